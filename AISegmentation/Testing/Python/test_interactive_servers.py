"""nnInteractive prompts against real servers of both generations on 127.0.0.1, with the tiny model on CPU.

Each generation's server is started once for this module (InteractiveServers) and stopped at its end; the last
test of each generation kills it. The scene: two separated spheres A and B (InteractiveScenes).
"""

import logging
import time

import numpy as np
import pytest
import requests

from InteractiveScenes import CENTER_A, CENTER_B, TwoSpheres
from DevTools.InteractiveServers import GENERATIONS, ServerProcess, skipWithoutServers, tinyModel
from DevTools.SyntheticImages import dice, sceneSnapshot
from AISegmentationLib.Interactive import Errors
from AISegmentationLib.Interactive.Consent import ConsentStore
from AISegmentationLib.Logic import AISegmentationLogic

pytestmark = pytest.mark.slow

L = AISegmentationLogic


@pytest.fixture(scope="session")
def modelDir():
    skipWithoutServers()
    return tinyModel()


@pytest.fixture(scope="module", params=GENERATIONS)
def server(request, modelDir):
    process = ServerProcess(request.param, modelDir)
    yield process
    process.stop()


@pytest.fixture
def ilogic(logic, server):
    interactive = L(logic.runtime)
    interactive.setInteractiveConsentStore(ConsentStore(None))
    interactive.setInteractiveServer(server.url, readTimeout=60)
    yield interactive
    interactive.closeInteractiveSession()


@pytest.fixture
def spheres(ilogic):
    scene = TwoSpheres(ilogic)
    scene.target = scene.segment("target")
    ilogic.startInteractiveSegmentation(scene.volume, scene.segmentation, scene.target)
    return scene


def assertSegments(spheres, segmentId, expectA, expectB):
    """Dice >= 0.9 with each expected sphere, and no voxel on a sphere that is not expected."""
    result = spheres.array(segmentId)
    for expected, mask, name in ((expectA, spheres.maskA, "A"), (expectB, spheres.maskB, "B")):
        if expected:
            assert dice(result & mask, mask) >= 0.9, f"sphere {name}: Dice {dice(result & mask, mask):.3f}"
        else:
            assert not (result & mask).any(), f"{(result & mask).sum()} voxels on sphere {name}"
    assert (result & ~(spheres.maskA | spheres.maskB)).sum() < 0.1 * result.sum(), "too many voxels outside"


def test_connection_reports_the_generation(ilogic, server):
    ok, message, info = ilogic.testInteractiveConnection()
    assert ok, message
    assert info.protocol == server.generation and info.capabilities["supportedInteractions"]["points"]


def test_point_on_sphere_a(ilogic, spheres):
    result = ilogic.interactivePoint(spheres.ras(CENTER_A))
    assert result.written and result.imageSent
    assertSegments(spheres, spheres.target, True, False)
    again = ilogic.interactivePoint(spheres.ras(np.add(CENTER_A, (0, 2, 2))))
    assert not again.imageSent
    assertSegments(spheres, spheres.target, True, False)


def test_point_from_a_markups_point_list(ilogic, spheres):
    points = ilogic.scene.AddNewNodeByClass("vtkMRMLMarkupsFiducialNode", "prompts")
    points.AddControlPointWorld(*spheres.ras(CENTER_A))
    points.AddControlPointWorld(*spheres.ras(CENTER_B))
    ilogic.interactivePoint(points, controlPointIndex=0)
    assertSegments(spheres, spheres.target, True, False)


def test_box_on_sphere_b(ilogic, spheres):
    roi = ilogic.scene.AddNewNodeByClass("vtkMRMLMarkupsROINode", "box")
    corners = spheres.boxCorners(CENTER_B, 9)
    roi.SetCenterWorld(*np.mean(corners, axis=0))
    roi.SetSizeWorld(*np.abs(np.subtract(corners[1], corners[0])))
    ilogic.interactiveBox(roi)
    assertSegments(spheres, spheres.target, False, True)


def test_scribble(ilogic, spheres):
    painted = ilogic.createSegmentation(spheres.volume, "scribbles")
    scribbleId = ilogic.addSegment(painted, "scribble")
    ilogic.writeLabelmapArray(painted, scribbleId, spheres.volume, spheres.scribbleLine(CENTER_A))
    ilogic.interactiveScribble(painted, scribbleId)
    assertSegments(spheres, spheres.target, True, False)


def test_lasso(ilogic, spheres):
    curve = ilogic.scene.AddNewNodeByClass("vtkMRMLMarkupsClosedCurveNode", "lasso")
    for point in spheres.circle(CENTER_B, 9, count=8):
        curve.AddControlPointWorld(*point)
    ilogic.interactiveLasso(curve)
    assertSegments(spheres, spheres.target, False, True)


def test_negative_point_removes_voxels(ilogic, spheres):
    ilogic.writeLabelmapArray(spheres.segmentation, spheres.target, spheres.volume, spheres.maskA | spheres.maskB)
    ilogic.startInteractiveFromSegment(spheres.volume, spheres.segmentation, spheres.target)
    ilogic.interactivePoint(spheres.ras(CENTER_B), positive=False)
    result = spheres.array(spheres.target)
    assert (result & spheres.maskB).sum() < 0.1 * spheres.maskB.sum()
    assert dice(result & spheres.maskA, spheres.maskA) >= 0.9


def test_undo(ilogic, spheres):
    ilogic.interactivePoint(spheres.ras(CENTER_A))
    assert spheres.array(spheres.target).any()
    ilogic.interactiveUndo()
    assert not spheres.array(spheres.target).any()
    ilogic.interactivePoint(spheres.ras(CENTER_B))
    assertSegments(spheres, spheres.target, False, True)


def test_reset(ilogic, spheres):
    ilogic.interactivePoint(spheres.ras(CENTER_A))
    ilogic.interactiveReset()
    assert not spheres.array(spheres.target).any()
    ilogic.interactivePoint(spheres.ras(CENTER_B))
    assertSegments(spheres, spheres.target, False, True)


def test_initial_segment_then_a_prompt_on_the_other_sphere(ilogic, spheres):
    ilogic.writeLabelmapArray(spheres.segmentation, spheres.target, spheres.volume, spheres.maskA)
    ilogic.startInteractiveFromSegment(spheres.volume, spheres.segmentation, spheres.target)
    ilogic.interactivePoint(spheres.ras(CENTER_B))
    assertSegments(spheres, spheres.target, True, True)


def test_masking_keeps_a_protected_segment(ilogic, spheres):
    """A box over both spheres segments both; with B's segment protected, B's voxels stay exactly as they were."""
    protected = spheres.segment("B")
    ilogic.writeLabelmapArray(spheres.segmentation, protected, spheres.volume, spheres.maskB)
    overBoth = spheres.boxCorners((20, 24, 32), np.array([0, 10, 24]))
    ilogic.interactiveBox(overBoth)
    spilled = spheres.array(spheres.target)
    assert (spilled & spheres.maskB).sum() > 0.5 * spheres.maskB.sum(), "the prompt should reach sphere B"
    assert spheres.array(protected).sum() < 0.5 * spheres.maskB.sum(), "unprotected, B is overwritten"
    ilogic.interactiveUndo()
    assert (spheres.array(protected) == spheres.maskB).all() and not spheres.array(spheres.target).any()
    ilogic.setMasking(maskMode="outsideAllSegments")
    ilogic.interactiveBox(overBoth)
    assert (spheres.array(protected) == spheres.maskB).all()
    assertSegments(spheres, spheres.target, True, False)


def test_volume_change_resends_the_image(ilogic, spheres):
    assert ilogic.interactivePoint(spheres.ras(CENTER_A)).imageSent
    assert not ilogic.interactivePoint(spheres.ras(CENTER_A)).imageSent
    import slicer

    array = slicer.util.arrayFromVolume(spheres.volume)
    array[0, 0, 0] += 1
    slicer.util.arrayFromVolumeModified(spheres.volume)
    assert ilogic.interactivePoint(spheres.ras(CENTER_A)).imageSent


def test_three_d_box_where_the_server_takes_it(ilogic, server, spheres):
    corners = [spheres.ras(np.subtract(CENTER_A, 9)), spheres.ras(np.add(CENTER_A, 9))]
    if server.generation == "legacy":
        before = sceneSnapshot(ilogic, spheres.segmentation)
        with pytest.raises(Errors.InteractiveError, match="does not support 3D box"):
            ilogic.interactiveBox(corners)
        assert sceneSnapshot(ilogic, spheres.segmentation) == before
        return
    ilogic.interactiveBox(corners)
    assertSegments(spheres, spheres.target, True, False)


def test_a_chosen_protocol_that_the_server_does_not_speak(ilogic, server, spheres):
    other = "legacy" if server.generation == "current" else "current"
    ilogic.setInteractiveServer(server.url, protocol=other)
    ilogic.startInteractiveSegmentation(spheres.volume, spheres.segmentation, spheres.target)
    with pytest.raises(Errors.WrongProtocolError, match=f"not a {other} nnInteractive server"):
        ilogic.interactivePoint(spheres.ras(CENTER_A))
    ok, message, _ = ilogic.testInteractiveConnection()
    assert not ok and "not a" in message


def test_read_timeout_is_reported_and_the_scene_unchanged(ilogic, server, spheres):
    ilogic.interactivePoint(spheres.ras(CENTER_A))
    before = sceneSnapshot(ilogic, spheres.segmentation)
    ilogic.setInteractiveServer(server.url, readTimeout=0.02)
    ilogic.startInteractiveSegmentation(spheres.volume, spheres.segmentation, spheres.target)
    started = time.perf_counter()
    with pytest.raises(Errors.InteractiveError, match="did not answer|within"):
        ilogic.interactivePoint(spheres.ras(CENTER_B))
    assert time.perf_counter() - started < 30
    assert sceneSnapshot(ilogic, spheres.segmentation) == before


def test_lost_lease_is_reported_and_the_next_prompt_reconnects(ilogic, server, spheres):
    if server.generation != "current":
        pytest.skip("leases exist only on the current server generation")
    ilogic.interactivePoint(spheres.ras(CENTER_A))
    client = ilogic.interactiveSession.client
    token = client._session._http.headers["X-Lease-Token"]
    requests.post(server.url + "/release", headers={"X-Lease-Token": token}, timeout=10).raise_for_status()
    before = sceneSnapshot(ilogic, spheres.segmentation)
    with pytest.raises(Errors.LeaseLostError, match="ended this session.*reconnects"):
        ilogic.interactivePoint(spheres.ras(CENTER_B))
    assert sceneSnapshot(ilogic, spheres.segmentation) == before
    result = ilogic.interactivePoint(spheres.ras(CENTER_B))
    assert result.imageSent
    assertSegments(spheres, spheres.target, True, True)


def test_server_killed_then_clear_message_and_scene_unchanged(ilogic, server, spheres):
    ilogic.interactivePoint(spheres.ras(CENTER_A))
    before = sceneSnapshot(ilogic, spheres.segmentation)
    server.kill()
    started = time.perf_counter()
    with pytest.raises(Errors.ServerUnreachableError, match="Cannot reach|broke during"):
        ilogic.interactivePoint(spheres.ras(CENTER_B))
    assert time.perf_counter() - started < 15
    assert sceneSnapshot(ilogic, spheres.segmentation) == before


def test_api_key_on_the_current_server(logic, modelDir, caplog):
    key = "Bearer-k3y-for-the-test"
    secured = ServerProcess("current", modelDir, apiKey=key)
    try:
        interactive = L(logic.runtime)
        interactive.setInteractiveServer(secured.url)
        ok, message, _ = interactive.testInteractiveConnection()
        assert not ok and "requires an API key" in message and "sent no API key" in message
        interactive.setInteractiveServer(secured.url, apiKey="wrong")
        ok, message, _ = interactive.testInteractiveConnection()
        assert not ok and "rejected" in message and "wrong" not in message
        caplog.set_level(logging.DEBUG)
        interactive.setInteractiveServer(secured.url, apiKey=key)
        ok, message, info = interactive.testInteractiveConnection()
        assert ok and info.capabilities["authentication"]
        spheres = TwoSpheres(interactive)
        target = spheres.segment("target")
        interactive.startInteractiveSegmentation(spheres.volume, spheres.segmentation, target)
        interactive.interactivePoint(spheres.ras(CENTER_A))
        interactive.closeInteractiveSession()
        assert spheres.array(target).any() and key not in caplog.text
    finally:
        secured.stop()
    assert key not in secured.log()
