"""Nothing long blocks the GUI thread or lets another tool in mid-run.

A comparison repaints the panel from its progress callback (slicer.app.processEvents()), where the user can press
another tool: every write is refused with a message until the comparison ends, and the comparison's result is whole.
A nnInteractive prompt is a job: the server exchange runs on a worker thread (the panel polls it with a timer, as
the AI runs), other writes are refused meanwhile, and job.wait() writes the result on the calling thread.
"""

import threading
import time

import numpy as np
import pytest

from AISegmentationLib.JobRunner import JobCancelledError
from AISegmentationLib.Interactive.Consent import ConsentStore
from AISegmentationLib.Logic import AISegmentationLogic
from DevTools.SyntheticImages import makeVolume, sceneSnapshot
from InteractiveLoopback import FakeLegacyServer
from InteractiveScenes import CENTER_A, TwoSpheres


def _twoSegmentations(logic):
    image = np.zeros((20, 20, 20), np.int16)
    image[5:15, 5:15, 5:15] = 300
    volume = makeVolume(logic, image)
    reference = logic.createSegmentation(volume, "reference")
    compared = logic.createSegmentation(volume, "compared")
    for node in (reference, compared):
        segmentId = logic.addSegment(node, "cube")
        logic.threshold(volume, node, segmentId, 200, 400)
    return volume, reference, compared


def test_a_tool_pressed_during_a_comparison_is_refused_and_changes_nothing(logic):
    volume, reference, compared = _twoSegmentations(logic)
    target = logic.createSegmentation(volume, "target")
    targetId = logic.addSegment(target, "bone")
    refusals = []

    def progress(fraction, message):  # what processEvents() lets the user do meanwhile
        for tool in (lambda: logic.threshold(volume, target, targetId, 200, 400),
                     lambda: logic.keepLargestIsland(volume, reference, reference.GetSegmentation().GetNthSegmentID(0)),
                     lambda: logic.undo(reference)):
            with pytest.raises(ValueError, match="comparison is running: nothing was changed") as refusal:
                tool()
            refusals.append(str(refusal.value))

    def segments():  # the segments' contents (the comparison adds its table node to the scene)
        return [{key: value for key, value in sceneSnapshot(logic, node).items() if key != "nodes"}
                for node in (target, reference)]

    before = segments()
    rows, table = logic.compareSegmentations(reference, compared, progressCallback=progress)
    assert len(refusals) >= 3 and table.GetNumberOfRows() == 1 and rows[0]["result"].dice == 1.0
    assert segments() == before
    logic.threshold(volume, target, targetId, 200, 400)  # after the comparison, tools work again
    assert int(logic.segmentArray(target, targetId, volume).sum()) == 1000


@pytest.fixture
def prompting(logic):
    interactive = AISegmentationLogic(logic.runtime)
    interactive.setInteractiveConsentStore(ConsentStore(None))
    spheres = TwoSpheres(interactive)
    spheres.target = spheres.segment("A")
    server = FakeLegacyServer(behaviour="sleep", delay=1.5)
    interactive.setInteractiveServer(server.url)
    interactive.startInteractiveSegmentation(spheres.volume, spheres.segmentation, spheres.target)
    yield interactive, spheres, server
    interactive.closeInteractiveSession()
    server.close()


def test_a_prompt_job_leaves_the_calling_thread_free_and_writes_when_waited_for(prompting):
    logic, scene, server = prompting
    before = sceneSnapshot(logic, scene.segmentation)
    started = time.perf_counter()
    job = logic.startInteractivePrompt("point", scene.ras(CENTER_A))
    assert time.perf_counter() - started < 1.0  # the server takes 1.5 s to answer: the GUI thread did not wait
    assert not job.done
    with pytest.raises(ValueError, match="prompt is running: nothing was changed"):
        logic.threshold(scene.volume, scene.segmentation, scene.target, 0, 1)
    assert sceneSnapshot(logic, scene.segmentation) == before  # nothing written before wait()
    result = job.wait(timeout=30)
    assert result.written and result.voxels == 125 and scene.array(scene.target)[CENTER_A]
    assert threading.active_count() >= 1 and job.state == "succeeded"
    logic.threshold(scene.volume, scene.segmentation, scene.target, 0, 1)  # the editor is free again


def test_a_cancelled_prompt_job_writes_nothing_and_frees_the_editor(prompting):
    logic, scene, server = prompting
    before = sceneSnapshot(logic, scene.segmentation)
    job = logic.startInteractivePrompt("point", scene.ras(CENTER_A))
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait(timeout=30)
    assert sceneSnapshot(logic, scene.segmentation) == before
    server.behaviour = "ok"
    result = logic.interactivePoint(scene.ras(CENTER_A))  # the next prompt resends the segment and writes
    assert result.written


def test_an_unknown_prompt_kind_is_refused_before_anything_is_sent(prompting):
    logic, scene, server = prompting
    with pytest.raises(ValueError, match="Unknown prompt kind 'circle'"):
        logic.startInteractivePrompt("circle", scene.ras(CENTER_A))
    assert server.requests == []
