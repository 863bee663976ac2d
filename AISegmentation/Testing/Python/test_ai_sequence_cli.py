"""``aisegmentation segment BACKEND INPUT --sequence --output FOLDER`` (CommandLine/SegmentSequence.py): a 4D NIfTI
or a folder of frames (natural order by name) gives one segmentation file per frame, volumes.csv and volumes.png;
untrusted inputs (a 4D header with absurd frames or size, a folder with other files, frames on different grids, a 4D
image given as one volume) are refused with a clear message before any backend runs, and nothing is written."""

import csv
import os
import struct

import numpy as np
import pytest
import SimpleITK as sitk
from DevTools.TinyModels import aiLogic, nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.Backends.Sequences.SequenceFiles import MAX_FRAMES, loadSequenceFiles, naturalKey
from AISegmentationLib.CommandLine import Main as AISegmentationCLI
from test_ai_sequences import FRAMES, phantomArrays, requireVolumesFollowTheTruth

SPACING = (1.0, 1.0, 1.0)


def writeFrame(path, array, spacing=SPACING, origin=(0.0, 0.0, 0.0)):
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return str(path)


def writeFourD(path, arrays, spacing=SPACING):
    """A 4D NIfTI whose frames are the KJI arrays (SimpleITK: the array's first axis is time)."""
    image = sitk.GetImageFromArray(np.stack(arrays), isVector=False)
    image.SetSpacing((*spacing, 1.0))
    sitk.WriteImage(image, str(path))
    return str(path)


def refused(tmp_path, capsys, inputPath, *extra):
    output = tmp_path / "out"
    code = AISegmentationCLI.main(["segment", "nnunet", str(inputPath), "--model", str(tmp_path / "no-model"),
                                   "--output", str(output), *extra])
    error = capsys.readouterr().err
    assert code == 2, error
    assert not output.exists()  # nothing written
    return error


def test_natural_order():
    assert sorted(["t10.nii.gz", "t2.nii.gz", "T1.nii.gz"], key=naturalKey) == ["T1.nii.gz", "t2.nii.gz",
                                                                                  "t10.nii.gz"]


def test_a_4d_nifti_loads_as_frames_in_order_on_its_grid(aiLogic, tmp_path):
    arrays = [np.full((4, 5, 6), value, np.int16) for value in (3, 1, 2)]
    path = writeFourD(tmp_path / "cine.nii.gz", arrays, spacing=(0.5, 0.75, 2.0))
    nodes = aiLogic.scene.GetNumberOfNodes()
    frames = loadSequenceFiles(aiLogic, path)
    assert [(value, name) for value, _, name in frames] == [("0", "cine_0000"), ("1", "cine_0001"), ("2", "cine_0002")]
    import slicer

    assert [int(slicer.util.arrayFromVolume(node).mean()) for _, node, _ in frames] == [3, 1, 2]
    assert all(node.GetImageData().GetDimensions() == (6, 5, 4) for _, node, _ in frames)
    assert np.allclose(frames[2][1].GetSpacing(), (0.5, 0.75, 2.0))
    for _, node, _ in frames:
        aiLogic.scene.RemoveNode(node)
    assert aiLogic.scene.GetNumberOfNodes() - nodes <= 3  # at most the storage nodes a load keeps


def test_untrusted_sequences_are_refused_before_any_backend_runs(tmp_path, capsys):
    frame = np.zeros((4, 4, 4), np.uint8)
    many = writeFourD(tmp_path / "many.nii", [frame[:1, :1, :1]] * (MAX_FRAMES + 1))
    assert f"announces {MAX_FRAMES + 1} frames, more than the limit of {MAX_FRAMES}" in refused(
        tmp_path, capsys, many, "--sequence")

    huge = tmp_path / "huge.nii"
    writeFourD(huge, [frame, frame])
    header = bytearray(huge.read_bytes())
    header[40:56] = struct.pack("<8h", 4, 2000, 2000, 2000, 50, 1, 1, 1)  # 2000^3 voxels x 50 frames, 8 KB of data
    huge.write_bytes(bytes(header))
    assert "more than the limit of" in refused(tmp_path, capsys, huge, "--sequence")

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    writeFrame(mixed / "t1.nii.gz", frame)
    (mixed / "notes.txt").write_text("not an image")
    assert "holds 'notes.txt', which is not a frame" in refused(tmp_path, capsys, mixed, "--sequence")

    grids = tmp_path / "grids"
    grids.mkdir()
    writeFrame(grids / "t1.nii.gz", frame)
    writeFrame(grids / "t2.nii.gz", frame, spacing=(1.0, 1.0, 2.0))
    assert "Frame 't2.nii.gz' lies on another grid" in refused(tmp_path, capsys, grids, "--sequence")
    writeFrame(grids / "t2.nii.gz", frame[:, :, :3])
    assert "Frame 't2.nii.gz' lies on another grid" in refused(tmp_path, capsys, grids, "--sequence")

    cine = writeFourD(tmp_path / "cine.nii.gz", [frame, frame, frame])
    assert "is a 4D image of 3 frames: add --sequence" in refused(tmp_path, capsys, cine)
    assert "--labelmap-output cannot be used with --sequence" in refused(
        tmp_path, capsys, cine, "--sequence", "--labelmap-output", str(tmp_path / "l.nii.gz"))


@pytest.mark.slow
def test_a_folder_of_frames_gives_a_segmentation_per_frame_a_volume_table_and_a_plot(tinyModels, tmp_path,
                                                                                        capsys):  # noqa: F811
    folder = tmp_path / "frames"
    folder.mkdir()
    truth = []
    # two frames (a child process each, so no more than the checks need): natural order t2, t10 (a sort by name
    # would swap them, and the volumes' change from frame to frame would fail)
    for name, (image, mask) in zip(("t2", "t10"), phantomArrays(FRAMES[:2])):
        writeFrame(folder / f"{name}.nii.gz", image)
        truth.append(mask.sum() / 1000.0)
    output = tmp_path / "out"
    code = AISegmentationCLI.main(["segment", "nnunet", str(folder), "--sequence", "--model",
                                   tinyModels["phantomModel"], "--folds", "0", "--no-tta", "--device", "cpu",
                                   "--output", str(output)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert sorted(os.listdir(output)) == ["t10.seg.nrrd", "t2.seg.nrrd", "volumes.csv", "volumes.png"]
    with open(output / "volumes.csv", newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [(row["frame"], row["file"]) for row in rows] == [("0", "t2.seg.nrrd"), ("1", "t10.seg.nrrd")]
    requireVolumesFollowTheTruth([float(row["bright_sphere (mL)"]) for row in rows], truth)
    assert (output / "volumes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Segmentations of 2 frames" in captured.out
    assert not [name for name in os.listdir(tmp_path) if name != "frames" and name != "out"]
