"""Every frame of a sequence through a backend (Backends/Sequences/): a 4D phantom whose bright sphere moves and
grows, segmented by the tiny nnU-Net model frame by frame (spread over a 2-worker Dask LocalCluster here; one at a
time on this computer in test_ai_sequence_cli.py); the per-frame volumes and positions follow the truth; a
segmentation sequence and a browser that plays it with the input; Cancel between and within frames leaves nothing;
bad input is refused before any backend runs. Each frame starts a child process (torch's import is most of its cost),
so the slow tests run as few frames as their checks need."""

import threading
import time

import numpy as np
import pytest
import slicer
from DevTools.SyntheticImages import ball, makeVolume
from DevTools.TinyModels import aiLogic, nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.JobRunner import JobCancelledError
from BackendChecks import processGroupGone

SHAPE = (40, 40, 40)
FRAMES = (((20, 20, 14), 5.0), ((20, 20, 20), 6.5), ((20, 20, 26), 8.0))  # (center KJI, radius) per frame


def phantomArrays(frames=FRAMES, seed=5):
    """[(image, mask)] of the frames: a bright sphere in noise."""
    rng = np.random.default_rng(seed)
    arrays = []
    for center, radius in frames:
        mask = ball(SHAPE, center, (radius,) * 3)
        image = rng.normal(40.0, 25.0, SHAPE)
        image[mask] = rng.normal(700.0, 60.0, int(mask.sum()))
        arrays.append((image.astype(np.float32), mask))
    return arrays


def phantomSequence(logic, frames=FRAMES):
    """A sequence node of the frames and the truth volume (mL) of the bright sphere in each."""
    sequence = logic.scene.AddNewNodeByClass("vtkMRMLSequenceNode", "phantom 4D")
    sequence.SetIndexName("time")
    truth = []
    for number, (image, mask) in enumerate(phantomArrays(frames)):
        volume = makeVolume(logic, image, name=f"t{number}")
        sequence.SetDataNodeAtValue(volume, str(number))
        logic.scene.RemoveNode(volume)
        truth.append(mask.sum() / 1000.0)
    return sequence, truth


def phantomOptions(tinyModels):  # noqa: F811
    return {"modelFolders": [tinyModels["phantomModel"]], "device": "cpu", "tta": False, "folds": 0}


def requireVolumesFollowTheTruth(measured, truth):
    """The tiny model (one fold, no mirroring) draws the boundary about one voxel wide of the truth (+0.5 to +0.7 mL
    here): the volumes follow the truth within that, and their changes from frame to frame follow the truth's (a
    reused or swapped frame fails the changes: the truth grows by 0.67 and 0.92 mL)."""
    for got, expected in zip(measured, truth):
        assert abs(got - expected) <= 0.8, (measured, truth)
    for step in range(1, len(truth)):
        change, expected = measured[step] - measured[step - 1], truth[step] - truth[step - 1]
        assert abs(change - expected) <= 0.25 * expected, (measured, truth)


def tableColumn(table, name):
    column = table.GetTable().GetColumnByName(name)
    return [column.GetValue(row) for row in range(table.GetNumberOfRows())]


def sphereCenterK(logic, segmentation, reference):
    """K index of the bright sphere's centre of mass in a segmentation of the sequence (on the reference's grid)."""
    segmentId = segmentation.GetSegmentation().GetSegmentIdBySegmentName("bright_sphere")
    array = slicer.util.arrayFromSegmentBinaryLabelmap(segmentation, segmentId, reference)
    return float(np.argwhere(array)[:, 0].mean())


def test_a_sequence_of_volumes_on_one_grid_is_required(aiLogic):
    image = np.zeros(SHAPE, np.float32)
    first, moved = makeVolume(aiLogic, image, name="a"), makeVolume(aiLogic, image, origin=(0.0, 0.0, 5.0), name="c")
    smaller = makeVolume(aiLogic, np.zeros((40, 40, 30), np.float32), name="b")
    empty, table = (aiLogic.scene.AddNewNodeByClass(name) for name in ("vtkMRMLSequenceNode", "vtkMRMLTableNode"))
    nodes = aiLogic.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="A sequence is a sequence node of volumes or a list of volume nodes"):
        aiLogic.runBackendOnSequence("nnunet", "not a sequence", modelFolders=["/x"])
    with pytest.raises(ValueError, match="The sequence has no frames"):
        aiLogic.runBackendOnSequence("nnunet", empty)
    with pytest.raises(ValueError, match="Frame 1 of the sequence is not a volume with an image"):
        aiLogic.runBackendOnSequence("nnunet", [first, table])
    with pytest.raises(ValueError, match=r"Frame 1 of the sequence has \(30, 40, 40\) voxels, frame 0 \(40, 40, 40\)"):
        aiLogic.runBackendOnSequence("nnunet", [first, smaller])
    with pytest.raises(ValueError, match="Frame 2 of the sequence lies on another grid"):
        aiLogic.runBackendOnSequence("nnunet", [first, first, moved])
    assert aiLogic.scene.GetNumberOfNodes() == nodes


def test_bad_options_are_refused_before_any_frame_runs(aiLogic):
    sequence, _ = phantomSequence(aiLogic)
    nodes = aiLogic.scene.GetNumberOfNodes()
    with pytest.raises(ValueError, match="nnU-Net model folder '/x' does not exist"):
        aiLogic.startBackendOnSequence("nnunet", sequence, modelFolders=["/x"])
    with pytest.raises(ValueError, match="workers must be a whole number of at least 1"):
        aiLogic.startBackendOnSequence("nnunet", sequence, modelFolders=["/x"], cluster="local", workers=0)
    with pytest.raises(ValueError, match="over tcp: a scheduler beyond this machine must be reached over TLS"):
        aiLogic.startBackendOnSequence("nnunet", [sequence.GetNthDataNode(0)], cluster="tcp://192.0.2.10:8786",
                                       modelFolders=["/x"])
    assert aiLogic.scene.GetNumberOfNodes() == nodes


@pytest.mark.slow
def test_cancel_before_a_frame_leaves_no_output(aiLogic, tinyModels):  # noqa: F811
    sequence, _ = phantomSequence(aiLogic)
    cancel = threading.Event()
    cancel.set()
    nodes = aiLogic.scene.GetNumberOfNodes()
    with pytest.raises(JobCancelledError, match="cancelled"):
        aiLogic.runBackendOnSequence("nnunet", sequence, cancelEvent=cancel, **phantomOptions(tinyModels))
    assert aiLogic.scene.GetNumberOfNodes() == nodes


@pytest.mark.slow
def test_cancel_within_a_frame_ends_its_process_tree_and_keeps_nothing(aiLogic, tinyModels):  # noqa: F811
    sequence, _ = phantomSequence(aiLogic)
    nodes = aiLogic.scene.GetNumberOfNodes()
    options = dict(phantomOptions(tinyModels), tta=True, stepSize=0.1)  # a slow frame: time to cancel within it
    job = aiLogic.startBackendOnSequence("nnunet", sequence, **options)
    deadline = time.time() + 120
    while job.pid is None and time.time() < deadline and not job.done:
        time.sleep(0.1)
    pid = job.pid
    assert pid is not None and [value for value, _ in job.runningFrames()] == ["0"]
    job.cancel()
    with pytest.raises(JobCancelledError, match=r"cancelled \(0 of 3 frames done; nothing was kept\)"):
        job.wait(timeout=60)
    assert job.state == "cancelled"
    assert processGroupGone(pid)
    assert aiLogic.scene.GetNumberOfNodes() == nodes


@pytest.mark.slow
def test_frames_on_a_two_worker_dask_cluster_follow_the_moving_growing_sphere(aiLogic, tinyModels):  # noqa: F811
    """One run pays for all the checks of a whole sequence: two frames at once on a 2-worker LocalCluster, imported
    in frame order into a segmentation sequence that a browser plays with the input, and a table whose volumes (and
    the segmentations' positions) follow the sphere. Frames one at a time on this computer: test_ai_sequence_cli.py
    (a folder of frames) and the Cancel tests above."""
    frames = FRAMES[1:]
    sequence, truth = phantomSequence(aiLogic, frames)  # two frames, one on each worker at the same time
    nodes = aiLogic.scene.GetNumberOfNodes()
    job = aiLogic.startBackendOnSequence("nnunet", sequence, cluster="local", workers=2,
                                         **phantomOptions(tinyModels))
    together, progress = 0, []
    deadline = time.time() + 480
    while not job.done and time.time() < deadline:
        progress.append((job.progress, job.message))
        started = [frameJob for _, frameJob in job.runningFrames() if frameJob.workerPid is not None
                   and not frameJob.done]
        together = max(together, len(started))
        time.sleep(0.1)
    output, table = job.wait(timeout=1)
    progress.append((job.progress, job.message))
    assert together == 2  # two frames ran at once, one on each worker (each has one thread)
    # the segmentation sequence, the table, the browser that plays both sequences (and, in desktop Slicer, its proxy)
    added = [aiLogic.scene.GetNthNode(i) for i in range(nodes, aiLogic.scene.GetNumberOfNodes())]
    assert sorted(node.GetClassName() for node in added) == ["vtkMRMLSequenceBrowserNode", "vtkMRMLSequenceNode",
                                                             "vtkMRMLTableNode"]
    assert [output.GetNthIndexValue(i) for i in range(output.GetNumberOfDataNodes())] == ["0", "1"]
    assert output.GetIndexName() == "time"
    browser = next(node for node in added if node.IsA("vtkMRMLSequenceBrowserNode"))
    assert browser.GetMasterSequenceNode() is sequence and browser.IsSynchronizedSequenceNode(output.GetID())
    centers = []
    for index in range(len(frames)):
        segmentation = output.GetNthDataNode(index)
        assert segmentation.IsA("vtkMRMLSegmentationNode")
        assert segmentation.GetAttribute("AISegmentation.environment").startswith("dask:tcp://127.0.0.1:")
        centers.append(sphereCenterK(aiLogic, segmentation, sequence.GetNthDataNode(index)))
    assert np.allclose(centers, [center[0] for center, _ in frames], atol=1.0), centers  # it moves with the truth
    assert tableColumn(table, "time") == ["0", "1"]
    requireVolumesFollowTheTruth(tableColumn(table, "bright_sphere"), truth)  # in frame order, not order of arrival
    assert any(message.startswith("Frame 0 (1/2) (+1 more running)") for _, message in progress), progress
    assert max(p for p, _ in progress) <= 100.0
    assert [p for p, _ in progress] == sorted(p for p, _ in progress)


def test_a_browsers_proxy_volume_names_its_sequence(aiLogic):
    """The panel offers "every frame" when the source volume shows a frame of a sequence (a browser's proxy node)."""
    sequence, _ = phantomSequence(aiLogic)
    scene = aiLogic.scene
    if not scene.IsNodeClassRegistered("vtkMRMLSequenceBrowserNode"):
        scene.RegisterNodeClass(slicer.vtkMRMLSequenceBrowserNode())
    proxy = makeVolume(aiLogic, np.zeros(SHAPE, np.float32), name="proxy")
    assert aiLogic.sequenceOfVolume(proxy) is None and aiLogic.sequenceOfVolume(None) is None
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    browser.AddProxyNode(proxy, sequence, False)
    assert aiLogic.sequenceOfVolume(proxy) is sequence
