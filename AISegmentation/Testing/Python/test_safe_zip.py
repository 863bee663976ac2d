"""Model zip import is bounded before anything is written: zip bombs, oversized archives, lying headers."""

import os
import struct
import zipfile

import pytest

from AISegmentationLib.Backends.Child import SafeZip

MIB = 1 << 20


def writeZeros(path, name, size, level=9):
    """A zip whose one member is `size` bytes of zeros, streamed (the test never holds it in memory)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
        with archive.open(name, "w", force_zip64=True) as member:
            block = bytes(MIB)
            for _ in range(size // MIB):
                member.write(block)
    return path


def filesUnder(folder):
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = writeZeros(tmp_path / "bomb.zip", "model/checkpoint_final.pth", 512 * MIB)
    assert os.path.getsize(bomb) < 2 * MIB
    parent = tmp_path / "models"
    with pytest.raises(ValueError, match="zip bomb") as raised:
        SafeZip.extractZipIntoNewFolder(str(bomb), str(parent))
    assert "checkpoint_final.pth" in str(raised.value) and "ratio above 200" in str(raised.value)
    assert filesUnder(parent) == [] and os.listdir(parent) == []
    destination = tmp_path / "direct"
    with pytest.raises(ValueError, match="zip bomb"):
        SafeZip.extractZip(str(bomb), str(destination))
    assert not destination.exists()


def test_many_small_bombs_are_refused_by_the_archive_ratio(tmp_path):
    path = tmp_path / "spread.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(8):  # each member stays under the 1 MiB a single member may always expand to
            archive.writestr(f"part{index}.bin", bytes(MIB - 1))
    with pytest.raises(ValueError, match=r"expands from .* to 8\.0 MiB \(ratio above 200"):
        SafeZip.extractZip(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_total_size_and_member_count_limits_from_arguments_and_environment(tmp_path, monkeypatch):
    path = tmp_path / "model.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(6):
            archive.writestr(f"fold_{index}/checkpoint_final.pth", os.urandom(MIB))
    with pytest.raises(ValueError, match=r"expands to 6\.0 MiB, more than the limit of 4\.0 MiB"):
        SafeZip.extractZip(str(path), str(tmp_path / "a"), maxBytes=4 * MIB)
    with pytest.raises(ValueError, match="6 members, more than the limit of 5"):
        SafeZip.extractZip(str(path), str(tmp_path / "a"), maxMembers=5)
    monkeypatch.setenv("AISEGMENTATION_ZIP_MAX_BYTES", str(5 * MIB))
    with pytest.raises(ValueError, match="AISEGMENTATION_ZIP_MAX_BYTES"):
        SafeZip.extractZip(str(path), str(tmp_path / "a"))
    assert not (tmp_path / "a").exists()
    assert SafeZip.extractZip(str(path), str(tmp_path / "b"), maxBytes=6 * MIB) == str(tmp_path / "b")
    assert len(filesUnder(tmp_path / "b")) == 6
    monkeypatch.setenv("AISEGMENTATION_ZIP_MAX_RATIO", "many")
    with pytest.raises(ValueError, match="AISEGMENTATION_ZIP_MAX_RATIO must be a positive number, got 'many'"):
        SafeZip.extractZip(str(path), str(tmp_path / "c"))
    with pytest.raises(ValueError, match="maxMembers must be a positive whole number"):
        SafeZip.extractZip(str(path), str(tmp_path / "c"), maxRatio=10, maxMembers=float("nan"))


def _lieAboutSize(path, size):
    """Rewrite the central directory's uncompressed size of the (only, non-zip64) member."""
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"PK\x01\x02")
    data[entry + 24:entry + 28] = struct.pack("<I", size)
    path.write_bytes(bytes(data))


def test_lying_headers_stop_the_extraction_and_leave_nothing(tmp_path):
    path = tmp_path / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("plans.json", b"{}")
        archive.writestr("fold_0/checkpoint_final.pth", bytes(64 * MIB))
    _lieAboutSize(path, 100 * 1024)  # small enough for the ratio check: the bytes are 650 times more
    destination = tmp_path / "out"
    with pytest.raises(ValueError, match="could not be extracted|expands past"):
        SafeZip.extractZip(str(path), str(destination))
    assert filesUnder(destination) == []


def test_a_real_model_layout_still_extracts(tmp_path):
    path = tmp_path / "Dataset990_Phantom.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("Dataset990_Phantom/", b"")
        archive.writestr("Dataset990_Phantom/plans.json", b'{"configurations": {}}' * 2000)  # ratio >> 200, small
        archive.writestr("Dataset990_Phantom/fold_0/checkpoint_final.pth", os.urandom(2 * MIB))
    folder = SafeZip.extractZipIntoNewFolder(str(path), str(tmp_path / "models"))
    names = sorted(os.path.relpath(p, folder) for p in filesUnder(folder))
    assert names == ["Dataset990_Phantom/fold_0/checkpoint_final.pth", "Dataset990_Phantom/plans.json"]
    assert os.path.getsize(os.path.join(folder, names[0])) == 2 * MIB


def test_path_checks_still_hold(tmp_path):
    path = tmp_path / "evil.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("../outside.txt", b"x")
    with pytest.raises(ValueError, match="leaves the destination folder"):
        SafeZip.extractZip(str(path), str(tmp_path / "out"))
    assert not (tmp_path / "outside.txt").exists() and not (tmp_path / "out").exists()
