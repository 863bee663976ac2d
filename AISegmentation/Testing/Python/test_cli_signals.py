"""The command line interrupted as a user interrupts it: SIGTERM or Ctrl-C (SIGINT) while the output is written
ends it with one line and exit code 143 / 130, and leaves no partial output file."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest

from AISegmentationLib.Runtime import isDesktopSlicer
from CommandLineProcess import cliCommand, cliEnvironment

pytestmark = pytest.mark.skipif(isDesktopSlicer() or os.name == "nt",
                                reason="the command line runs headless; POSIX signals")

SHAPE = (160, 256, 256)  # noise: its segmentation takes a second or two to compress and write
THRESHOLD = (0, 499)


@pytest.fixture(scope="module")
def noiseVolume(tmp_path_factory):
    import SimpleITK as sitk

    image = np.random.default_rng(7).integers(0, 1000, SHAPE, dtype=np.int16)
    path = tmp_path_factory.mktemp("noise") / "noise.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(image), str(path), False)
    return path, int(np.count_nonzero((image >= THRESHOLD[0]) & (image <= THRESHOLD[1])))


def _startThreshold(volumePath, output):
    return subprocess.Popen(cliCommand("threshold", volumePath, "--segment", "noise", "--range", *THRESHOLD,
                                       "--output", output),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cliEnvironment())


def _signalWhenOutputAppears(process, folder, signalNumber, timeout=240):
    """Send the signal as soon as anything (the temporary file, or today the target itself) appears in folder."""
    deadline = time.time() + timeout
    while process.poll() is None and time.time() < deadline:
        entries = os.listdir(folder)
        if entries:
            process.send_signal(signalNumber)
            break
        time.sleep(0.002)
    else:
        process.kill()
        pytest.fail(f"the command ended (code {process.returncode}) or timed out before writing its output")
    stdout, stderr = process.communicate(timeout=120)
    return entries, process.returncode, stderr


def _assertWholeOrAbsent(logic, output, expectedVoxels, volumePath):
    folder = os.path.dirname(output)
    assert [name for name in os.listdir(folder) if name != os.path.basename(output)] == [], "temporary file left"
    if os.path.exists(output):  # the signal came after the rename: the file must be the complete one
        segmentation = logic.loadSegmentation(str(output))
        volume = logic.loadVolume(str(volumePath))
        segmentId = segmentation.GetSegmentation().GetNthSegmentID(0)
        assert int(logic.segmentArray(segmentation, segmentId, volume).sum()) == expectedVoxels


@pytest.mark.parametrize("signalNumber, exitCode, word", [(signal.SIGTERM, 143, "terminated"),
                                                          (signal.SIGINT, 130, "interrupted")])
def test_signal_during_output_write_exits_cleanly_without_partial_file(logic, tmp_path, noiseVolume, signalNumber,
                                                                       exitCode, word):
    volumePath, expectedVoxels = noiseVolume
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "noise.seg.nrrd"
    seen, code, stderr = _signalWhenOutputAppears(_startThreshold(volumePath, output), folder, signalNumber)
    assert code == exitCode, (seen, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and word in lines[0] and lines[0].startswith("aisegmentation threshold:"), stderr
    assert "Traceback" not in stderr
    _assertWholeOrAbsent(logic, str(output), expectedVoxels, volumePath)


def test_sigterm_keeps_the_previous_output(logic, tmp_path, noiseVolume):
    """An output that existed before the interrupted run is either the old file or the complete new one."""
    volumePath, expectedVoxels = noiseVolume
    folder = tmp_path / "out"
    folder.mkdir()
    output = folder / "noise.seg.nrrd"
    old = b"previous result"
    output.write_bytes(old)
    process = _startThreshold(volumePath, output)
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline and len(os.listdir(folder)) < 2:
        time.sleep(0.002)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 143, stderr
    assert "Traceback" not in stderr
    if output.read_bytes() != old:
        _assertWholeOrAbsent(logic, str(output), expectedVoxels, volumePath)
    assert sorted(os.listdir(folder)) == ["noise.seg.nrrd"]


def test_ctrl_c_while_loading_is_one_line(tmp_path, noiseVolume):
    volumePath, _ = noiseVolume
    process = _startThreshold(volumePath, tmp_path / "out" / "noise.seg.nrrd")
    time.sleep(1.5)  # imports and loading are under way
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert len(stderr.strip().splitlines()) == 1 and "interrupted" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out" / "noise.seg.nrrd").exists()
