"""nnInteractive client errors against loopback servers: clear messages, scene unchanged, no hang past the timeout.

The misbehaving servers here are small fakes of the legacy protocol (InteractiveLoopback); the same failures against
the real servers of both generations are in test_interactive_servers.py.
"""

import logging
import os
import time

import numpy as np
import pytest

from InteractiveLoopback import CURRENT_CAPABILITIES, LEGACY_PATHS, FakeCurrentServer, FakeLegacyServer
from InteractiveScenes import CENTER_A, TwoSpheres
from DevTools.InteractiveServers import freePort
from DevTools.SyntheticImages import sceneSnapshot
from AISegmentationLib.Interactive import Errors
from AISegmentationLib.Interactive.Consent import ConsentStore
from AISegmentationLib.Interactive.Region import ChangedRegion
from AISegmentationLib.Logic import AISegmentationLogic

L = AISegmentationLogic


@pytest.fixture
def ilogic(logic):
    interactive = L(logic.runtime)
    interactive.setInteractiveConsentStore(ConsentStore(None))
    yield interactive
    interactive.closeInteractiveSession()


@pytest.fixture
def scene(ilogic):
    spheres = TwoSpheres(ilogic)
    spheres.target = spheres.segment("A")
    return spheres


@pytest.fixture
def fake():
    server = FakeLegacyServer()
    yield server
    server.close()


def start(ilogic, scene, url, **settings):
    ilogic.setInteractiveServer(url, **settings)
    ilogic.startInteractiveSegmentation(scene.volume, scene.segmentation, scene.target)


def expectFailure(ilogic, scene, errorClass, *phrases, limit=None):
    """Run a point prompt on sphere A; it must raise errorClass with the phrases and leave the scene unchanged."""
    before = sceneSnapshot(ilogic, scene.segmentation)
    started = time.perf_counter()
    with pytest.raises(errorClass) as raised:
        ilogic.interactivePoint(scene.ras(CENTER_A))
    elapsed = time.perf_counter() - started
    for phrase in phrases:
        assert phrase in str(raised.value)
    assert sceneSnapshot(ilogic, scene.segmentation) == before
    if limit is not None:
        assert elapsed < limit, f"took {elapsed:.1f} s"
    return raised.value


def test_point_prompt_through_the_loopback_server_writes_the_reply(ilogic, scene, fake):
    start(ilogic, scene, fake.url)
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.written and result.voxels == 125 and result.imageSent
    assert scene.array(scene.target).sum() == 125 and scene.array(scene.target)[CENTER_A]
    again = ilogic.interactivePoint(scene.ras((20, 24, 30)))
    assert not again.imageSent and fake.uploads == 1


def test_server_not_running(ilogic, scene):
    start(ilogic, scene, f"http://127.0.0.1:{freePort()}")
    expectFailure(ilogic, scene, Errors.ServerUnreachableError, "Cannot reach", "Is the server running", limit=10)
    ok, message, info = ilogic.testInteractiveConnection()
    assert not ok and info is None and "Cannot reach" in message


def test_server_killed_mid_request_then_recovers(ilogic, scene, fake):
    start(ilogic, scene, fake.url)
    fake.behaviour, fake.once = "drop", True
    expectFailure(ilogic, scene, Errors.ServerUnreachableError, "broke during 'point prompt'", limit=10)
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.written and result.imageSent and fake.uploads == 2


def test_timeout_does_not_hang(ilogic, scene, fake):
    fake.behaviour, fake.delay = "sleep", 6.0
    start(ilogic, scene, fake.url, readTimeout=0.5)
    expectFailure(ilogic, scene, Errors.ServerTimeoutError, "within 0.5 s", "read timeout", limit=4)


def test_http_500(ilogic, scene, fake):
    fake.behaviour = "error500"
    start(ilogic, scene, fake.url)
    expectFailure(ilogic, scene, Errors.ServerReplyError, "HTTP 500", "point prompt")


def test_garbage_reply(ilogic, scene, fake):
    fake.behaviour = "garbage"
    start(ilogic, scene, fake.url)
    expectFailure(ilogic, scene, Errors.ServerReplyError, "not a segmentation of the image")


def test_no_image_uploaded_reply_then_the_image_is_sent_again(ilogic, scene, fake):
    start(ilogic, scene, fake.url)
    fake.behaviour, fake.once = "noImage", True
    expectFailure(ilogic, scene, Errors.ServerReplyError, "has no image", "No image uploaded", "sent again")
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.imageSent and result.written and fake.uploads == 2


def test_wrong_protocol(ilogic, scene, fake):
    fake.behaviour = "notNnInteractive"
    start(ilogic, scene, fake.url)
    expectFailure(ilogic, scene, Errors.WrongProtocolError, "not an nnInteractive server")
    ok, message, _ = ilogic.testInteractiveConnection()
    assert not ok and "not an nnInteractive server" in message
    start(ilogic, scene, fake.url, protocol="current")
    expectFailure(ilogic, scene, Errors.WrongProtocolError, "not a current nnInteractive server")


def test_test_connection_reports_protocol_version_and_capabilities(ilogic, fake):
    ilogic.setInteractiveServer(fake.url.replace("http://", ""))
    ok, message, info = ilogic.testInteractiveConnection()
    assert ok and info.protocol == "legacy" and "nninteractive-slicer-server" in message
    assert info.version == "FakeLegacy 0.0" and info.capabilities["supportedInteractions"]["lasso"]
    assert not info.capabilities["supportedInteractions"]["bbox3d"]


def test_prompts_outside_the_volume_are_refused_before_anything_is_sent(ilogic, scene, fake):
    start(ilogic, scene, fake.url)
    before = sceneSnapshot(ilogic, scene.segmentation)
    with pytest.raises(ValueError, match="outside volume 'two spheres'"):
        ilogic.interactivePoint(scene.ras((20, 24, 80)))
    with pytest.raises(ValueError, match="lies outside volume"):
        ilogic.interactiveBox([scene.ras((20, 60, 70)), scene.ras((20, 70, 90))])
    with pytest.raises(ValueError, match="must lie on one slice"):
        ilogic.interactiveLasso([scene.ras((10, 20, 20)), scene.ras((20, 30, 20)), scene.ras((30, 20, 25))])
    with pytest.raises(ValueError, match="empty"):
        ilogic.interactiveScribble(np.zeros((40, 48, 64), np.uint8))
    with pytest.raises(ValueError, match="RAS point"):
        ilogic.interactivePoint([1.0, float("nan"), 2.0])
    assert fake.requests == [] and sceneSnapshot(ilogic, scene.segmentation) == before


def test_api_key_only_in_the_authorization_header_never_in_scene_or_log(ilogic, scene, fake, caplog, tmp_path):
    key = "k3y-Sup3r-s3cret-4711"
    caplog.set_level(logging.DEBUG)
    start(ilogic, scene, fake.url, apiKey=key)
    ilogic.testInteractiveConnection()
    ilogic.interactivePoint(scene.ras(CENTER_A))
    ilogic.interactiveLasso(scene.circle(CENTER_A, 5))
    assert len(fake.requests) >= 4
    for method, path, headers, body in fake.requests:
        assert headers.get("Authorization") == f"Bearer {key}"
        assert key not in path and key.encode() not in body
        assert all(key not in value for name, value in headers.items() if name != "Authorization")
    assert key not in caplog.text and key not in repr(ilogic.interactiveSession.settings)
    scenePath = os.path.join(tmp_path, "scene.mrml")
    ilogic.scene.SetURL(scenePath)
    assert ilogic.scene.Commit()
    ilogic.saveSegmentation(scene.segmentation, os.path.join(tmp_path, "segmentation.seg.nrrd"))
    for name in os.listdir(tmp_path):
        with open(os.path.join(tmp_path, name), "rb") as f:
            assert key.encode() not in f.read(), name


def test_consent_before_an_image_goes_to_another_machine(ilogic, scene, tmp_path):
    store = ConsentStore(os.path.join(tmp_path, "consent.json"))
    ilogic.setInteractiveConsentStore(store)
    start(ilogic, scene, "https://segmentation.example.org:8443")
    asked = []
    ilogic.interactiveConsentCallback = lambda origin: asked.append(origin) or False
    before = sceneSnapshot(ilogic, scene.segmentation)
    with pytest.raises(Errors.ConsentRequiredError, match="another machine.*Nothing was sent"):
        ilogic.interactivePoint(scene.ras(CENTER_A))
    assert asked == ["https://segmentation.example.org:8443"] and sceneSnapshot(ilogic, scene.segmentation) == before
    assert ilogic.allowInteractiveServer() == "https://segmentation.example.org:8443"
    assert ConsentStore(store.path).isAllowed("https://segmentation.example.org:8443")
    ilogic.revokeInteractiveServer("https://segmentation.example.org:8443/some/path")
    assert not ConsentStore(store.path).allowedServers()


def test_consent_callback_agreement_is_remembered_per_server():
    from AISegmentationLib.Interactive.Connection import ServerSettings
    from AISegmentationLib.Interactive.Consent import requireConsent

    store = ConsentStore(None)
    remote = ServerSettings("http://10.1.2.3:1527")
    requireConsent(ServerSettings("http://localhost:1527"), store)  # this machine: no question
    requireConsent(ServerSettings("http://[::1]:1527"), store)
    requireConsent(remote, store, lambda origin: True)
    assert store.allowedServers() == ["http://10.1.2.3:1527"]
    requireConsent(remote, store)  # remembered
    with pytest.raises(Errors.ConsentRequiredError):
        requireConsent(ServerSettings("http://10.1.2.3:8000"), store)


# Malformed replies: each is a ServerReplyError with a clear message, nothing is written, the next prompt works -------


@pytest.mark.parametrize("behaviour, phrases", [
    ("corruptGzip", ["corrupt gzip reply to 'point prompt'"]),
    ("truncatedGzip", ["truncated gzip reply to 'point prompt'"]),
    ("gzipBomb", ["more than such a reply can be"]),
])
def test_malformed_legacy_prompt_replies(ilogic, scene, fake, behaviour, phrases):
    start(ilogic, scene, fake.url)
    fake.behaviour, fake.once = behaviour, True
    expectFailure(ilogic, scene, Errors.ServerReplyError, "Nothing was changed", *phrases)
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.written and result.voxels == 125


@pytest.mark.parametrize("openapi", [
    {"paths": {path: {} for path in LEGACY_PATHS}, "info": "FakeLegacy 0.0"},
    {"paths": 5, "info": {"title": "FakeLegacy"}},
    {"paths": {path: {} for path in LEGACY_PATHS}, "info": {"title": ["FakeLegacy"], "version": {"major": 0}}},
])
def test_openapi_with_wrong_value_types(ilogic, openapi):
    fake = FakeLegacyServer(openapi=openapi)
    try:
        ilogic.setInteractiveServer(fake.url, protocol="legacy")
        ok, message, info = ilogic.testInteractiveConnection()
    finally:
        fake.close()
    if isinstance(openapi["paths"], dict):  # a usable server: only its texts are replaced
        assert ok and info.version in ("FastAPI unknown", "FakeLegacy unknown"), message
    else:
        assert not ok and info is None and "not a legacy nnInteractive server" in message


@pytest.fixture
def current():
    pytest.importorskip("nnInteractive.inference.remote", reason="needs the nninteractive-client package")
    server = FakeCurrentServer()
    yield server
    server.close()


def test_point_prompt_through_the_loopback_current_server(ilogic, scene, current):
    start(ilogic, scene, current.url, protocol="current")
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.written and result.voxels == 125 and scene.array(scene.target)[CENTER_A]
    ok, message, info = ilogic.testInteractiveConnection()
    assert ok and info.protocol == "current" and info.version == "inference session fake 2.6", message


@pytest.mark.parametrize("field, value", [
    ("supported_interactions", ["points", "lasso"]),
    ("supported_interactions", {"points": "yes"}),
    ("supports_undo", "no"),
    ("supports_initial_label", 1),
    ("supported_interactions", 5),
])
def test_capabilities_with_wrong_value_types(ilogic, scene, current, field, value):
    current.capabilities = dict(CURRENT_CAPABILITIES, **{field: value})
    ilogic.setInteractiveServer(current.url)
    ok, message, info = ilogic.testInteractiveConnection()
    assert not ok and info is None and f"'{field}' should be" in message, message
    start(ilogic, scene, current.url)
    expectFailure(ilogic, scene, Errors.ServerReplyError, "capabilities that are not what the protocol says", field)


@pytest.mark.parametrize("behaviour, phrases", [
    ("boxWraps", ["changed box", "lies outside the volume"]),
    ("boxPastEnd", ["changed box", "lies outside the volume"]),
    ("broadcast", ["does not fit its box of shape (5, 5, 5)", "declares shape (1, 1, 1)"]),
    ("truncated", ["does not fit its box", "truncated"]),
    ("badMeta", ["X-Meta header is not a JSON object"]),
])
def test_malformed_current_prompt_replies(ilogic, scene, current, behaviour, phrases):
    start(ilogic, scene, current.url, protocol="current")
    current.behaviour, current.once = behaviour, True
    expectFailure(ilogic, scene, Errors.ServerReplyError, *phrases)
    assert scene.array(scene.target).shape == scene.maskA.shape
    result = ilogic.interactivePoint(scene.ras(CENTER_A))
    assert result.written and result.voxels == 125
    assert scene.array(scene.target).shape == scene.maskA.shape and scene.array(scene.target).sum() == 125


@pytest.mark.parametrize("box, mask", [
    (((-2, 3), (0, 5), (0, 5)), np.ones((5, 5, 5), np.uint8)),
    (((38, 43), (0, 5), (0, 5)), np.ones((5, 5, 5), np.uint8)),
    (((0, 5), (0, 5), (0, 5)), np.full((5, 5, 5), 255, np.uint8)),
    (((0, 5), (0, 5), (0, 5)), np.ones((5, 5, 5), np.float32)),
])
def test_a_region_outside_the_volume_is_never_written(ilogic, scene, fake, box, mask):
    """Whatever a client hands back, a box partly outside the volume or a mask not 0/1 is refused, not clipped."""
    start(ilogic, scene, fake.url)
    session = ilogic.interactiveSession
    before = sceneSnapshot(ilogic, scene.segmentation)
    with pytest.raises(Errors.ServerReplyError, match="outside the volume|values other than 0 and 1|integer array"):
        session.prompt("point", lambda client: ChangedRegion(box, mask))
    assert sceneSnapshot(ilogic, scene.segmentation) == before
    assert scene.array(scene.target).shape == scene.maskA.shape


def test_test_connection_never_raises(logic):
    interactive = L(logic.runtime)
    ok, message, info = interactive.testInteractiveConnection()
    assert not ok and info is None and "No nnInteractive server set" in message
