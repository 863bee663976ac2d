"""Every frame of a sequence through a backend (Backends/SequenceRun.py): a 4D phantom whose bright sphere moves and
grows, segmented by the tiny nnU-Net model frame by frame; the per-frame volumes follow the truth."""

import threading

import numpy as np
import pytest
from DevTools.SyntheticImages import ball, makeVolume
from DevTools.TinyModels import aiLogic, nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.Backends.Jobs.JobRunner import JobCancelledError

SHAPE = (40, 40, 40)
FRAMES = (((20, 20, 14), 5.0), ((20, 20, 20), 6.5), ((20, 20, 26), 8.0))  # (center KJI, radius) per frame


def phantomSequence(logic):
    """A sequence node of 3 frames and the truth volume (mL) of the bright sphere in each."""
    rng = np.random.default_rng(5)
    sequence = logic.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "phantom 4D")
    sequence.SetIndexName("time")
    truth = []
    for number, (center, radius) in enumerate(FRAMES):
        mask = ball(SHAPE, center, (radius,) * 3)
        image = rng.normal(40.0, 25.0, SHAPE)
        image[mask] = rng.normal(700.0, 60.0, int(mask.sum()))
        volume = makeVolume(logic, image.astype(np.float32), name=f"t{number}")
        sequence.SetDataNodeAtValue(volume, str(number))
        logic.scene.RemoveNode(volume)
        truth.append(mask.sum() / 1000.0)
    return sequence, truth


def test_a_sequence_or_a_list_of_volumes_is_required(aiLogic):
    with pytest.raises(ValueError, match="A sequence is a sequence node of volumes or a list of volume nodes"):
        aiLogic.runBackendOnSequence("nnunet", "not a sequence", modelFolders=["/x"])
    with pytest.raises(ValueError, match="The sequence has no frames"):
        aiLogic.runBackendOnSequence("nnunet", aiLogic.scene.AddNewNodeByClass("vtkMRMLSequenceNode"))


def test_cancel_before_a_frame_leaves_no_output(aiLogic):
    sequence, _ = phantomSequence(aiLogic)
    cancel = threading.Event()
    cancel.set()
    nodes = aiLogic.scene.GetNumberOfNodes()
    with pytest.raises(JobCancelledError, match="cancelled before frame 0"):
        aiLogic.runBackendOnSequence("nnunet", sequence, cancelEvent=cancel, modelFolders=["/x"])
    assert aiLogic.scene.GetNumberOfNodes() == nodes


@pytest.mark.slow
def test_per_frame_volumes_follow_the_moving_growing_sphere(aiLogic, tinyModels):
    sequence, truth = phantomSequence(aiLogic)
    progress = []
    nodes = aiLogic.scene.GetNumberOfNodes()
    output, table = aiLogic.runBackendOnSequence("nnunet", sequence, modelFolders=[tinyModels["phantomModel"]],
                                                 device="cpu", progressCallback=lambda p, m: progress.append((p, m)))
    assert aiLogic.scene.GetNumberOfNodes() == nodes + 2  # the segmentation sequence and the table, nothing else
    assert [output.GetNthIndexValue(i) for i in range(output.GetNumberOfDataNodes())] == ["0", "1", "2"]
    assert output.GetIndexName() == "time"
    for index in range(3):
        segmentation = output.GetNthDataNode(index)
        assert segmentation.IsA("vtkMRMLSegmentationNode")
        assert segmentation.GetSegmentation().GetSegmentIdBySegmentName("bright_sphere")
    assert table.GetNumberOfRows() == 3 and table.GetTable().GetColumnByName("time") is not None
    measured = [table.GetTable().GetColumnByName("bright_sphere").GetValue(row) for row in range(3)]
    # The tiny model draws the boundary about one voxel wide of the truth (about +0.45 mL here): the volumes follow the
    # truth within that, and their changes from frame to frame follow the truth's.
    for got, expected in zip(measured, truth):
        assert abs(got - expected) <= 0.6, (measured, truth)
    for step in (1, 2):
        change, expected = measured[step] - measured[step - 1], truth[step] - truth[step - 1]
        assert abs(change - expected) <= 0.25 * expected, (measured, truth)
    assert any(message.startswith("Frame 2 (3/3)") for _, message in progress)
    assert max(p for p, _ in progress) <= 100.0
