"""MONAI Auto3DSeg through the Logic, the CLI and the panel's declarations: real inference with tiny SegResNetDS
models trained here and packed in the Auto3DSeg zip layout (DevTools/build_tiny_monai.py), in the isolated
"monaiauto3dseg" environment; catalog downloads from a loopback server with checksums; errors, cancel and kill."""

import functools
import http.server
import json
import os
import threading
import zipfile

import numpy as np
import pytest
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, dice, makeVolume, sceneSnapshot
from DevTools.TinyModels import aiLogic, labelmapToWorld, phantomVolume, segmentArrays, volumeToWorld  # noqa: F401
from DevTools.TinyMonaiModels import monaiEnvironment, tinyMonaiModels  # noqa: F401 - fixtures

from AISegmentationLib.CommandLine import Main as AISegmentationCLI
from AISegmentationLib.Segments import segmentTag
from BackendChecks import (checkCancelEndsTheProcessTree, checkKilledChildIsAClearError, requireLabelDice,
                           waitForStage)

pytestmark = pytest.mark.slow

BACKEND = "monaiauto3dseg"
PHANTOM_LABELS = {"bright sphere": 1, "dark sphere": 2}
MODEL_ID = "abdominal-organs-3mm"  # an id of the shipped catalog, mapped to the tiny model by a test catalog


def _run(logic, volumes, **options):
    return logic.runBackend(BACKEND, volumes, device="cpu", environment="isolated", **options)


def _requirePhantom(logic, segmentation, volume, truth):
    return requireLabelDice(logic, segmentation, volume, truth, PHANTOM_LABELS)


def test_phantom_dice_exact_oblique_anisotropic_geometry_names_colours_terminology(aiLogic, tinyMonaiModels):
    (volume,), truth = phantomVolume(aiLogic, seed=931, spacing=(0.9, 1.1, 1.5), origin=(12.5, -40.0, 7.25),
                                     directions=OBLIQUE_DIRECTIONS)
    progress = []
    segmentation = _run(aiLogic, volume, modelFile=tinyMonaiModels["phantom"]["path"],
                        progressCallback=lambda p, m: progress.append((p, m)))
    print("Dice", _requirePhantom(aiLogic, segmentation, volume, truth))
    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        np.testing.assert_allclose(labelmapToWorld(segmentation, segmentId), volumeToWorld(volume), atol=1e-6)
    segments = {segmentation.GetSegmentation().GetSegment(i).GetName(): segmentation.GetSegmentation().GetSegment(i)
                for i in segmentation.GetSegmentation().GetSegmentIDs()}
    np.testing.assert_allclose(segments["bright sphere"].GetColor(), np.array([230, 220, 70]) / 255, atol=1e-3)
    assert "SCT^123037004^Anatomical Structure~SCT^272673000^Bone~" in segmentTag(segments["bright sphere"],
                                                                                 "TerminologyEntry")
    assert "SCT^39607008^Lung~SCT^7771000^Left" in segmentTag(segments["dark sphere"], "TerminologyEntry")
    assert segmentation.GetAttribute("AISegmentation.backend") == "MONAI Auto3DSeg"
    assert '"monai": "1.6.1"' in segmentation.GetAttribute("AISegmentation.version")
    assert segmentation.GetAttribute("AISegmentation.environment") == "isolated:monaiauto3dseg"
    assert progress[-1][0] == 100 and any(message == "Predicting" for _, message in progress)


def test_two_input_model_takes_volumes_in_order_and_refuses_a_wrong_count(aiLogic, tinyMonaiModels):
    (t1, t2), truth = phantomVolume(aiLogic, seed=932, twoChannel=True)
    path = tinyMonaiModels["two-input"]["path"]
    byName = _run(aiLogic, {"T2": t2, "T1": t1}, modelFile=path, inputs=["T1", "T2"])
    score = dice(segmentArrays(aiLogic, byName, t1)["lesion"], truth == 1)
    print("Dice two-input", score)
    assert score >= 0.9
    swapped = _run(aiLogic, [t2, t1], modelFile=path, inputs=["T1", "T2"])
    assert dice(segmentArrays(aiLogic, swapped, t1).get("lesion", np.zeros_like(truth)), truth == 1) < 0.5
    with pytest.raises(ValueError, match=r"takes 2 input volume\(s\) \(T1, T2\), got 1"):
        aiLogic.startBackend(BACKEND, t1, modelFile=path, inputs=["T1", "T2"])
    segmentation = aiLogic.createSegmentation(t1, "keep")
    aiLogic.addSegment(segmentation, "manual")
    before = sceneSnapshot(aiLogic, segmentation)
    with pytest.raises(ValueError, match=r"expects 2 input volume\(s\), got 1"):
        _run(aiLogic, t1, modelFile=path, segmentationNode=segmentation)
    assert sceneSnapshot(aiLogic, segmentation) == before


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def loopbackServer(tinyMonaiModels):
    """An HTTP server on 127.0.0.1 serving the tiny model zips; yields its base URL."""
    folder = os.path.dirname(tinyMonaiModels["phantom"]["path"])
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _catalog(tmp_path, baseUrl, model, sha256):
    entry = {"id": MODEL_ID, "title": "Tiny phantom", "modality": "CT", "description": "test", "license": "",
             "quick": False, "resolution": None, "inputs": ["CT"], "segmentNames": list(PHANTOM_LABELS),
             "versions": [{"version": "1.0.0", "url": f"{baseUrl}/{model['file']}", "size": model["size"],
                           "sha256": sha256}]}
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"models": [entry]}))
    return str(path)


def test_catalog_model_downloads_only_after_consent_with_its_checksum(aiLogic, tinyMonaiModels, loopbackServer,
                                                                      tmp_path):
    model = tinyMonaiModels["phantom"]
    settings = aiLogic.backendSettings(BACKEND)
    settings.update(home=str(tmp_path / "models"), catalog=_catalog(tmp_path, loopbackServer, model, "0" * 64))
    (volume,), truth = phantomVolume(aiLogic, seed=933)
    with pytest.raises(ValueError, match="is not installed and allowDownload is off"):
        aiLogic.startBackend(BACKEND, volume, model=MODEL_ID)
    segmentation = aiLogic.createSegmentation(volume, "keep")
    before = sceneSnapshot(aiLogic, segmentation)
    with pytest.raises(ValueError, match="fails its checksum"):
        _run(aiLogic, volume, model=MODEL_ID, allowDownload=True, segmentationNode=segmentation)
    assert sceneSnapshot(aiLogic, segmentation) == before
    assert not os.path.exists(tmp_path / "models" / MODEL_ID / "1.0.0")
    settings["catalog"] = _catalog(tmp_path, loopbackServer, model, model["sha256"])
    result = _run(aiLogic, volume, model=MODEL_ID, allowDownload=True)
    _requirePhantom(aiLogic, result, volume, truth)
    assert os.path.isfile(tmp_path / "models" / MODEL_ID / "1.0.0" / "model.pt")
    assert "Tiny phantom' 1.0.0" in result.GetAttribute("AISegmentation.model")
    again = _run(aiLogic, volume, model=MODEL_ID)  # installed: no consent needed any more
    _requirePhantom(aiLogic, again, volume, truth)
    settings["home"] = str(tmp_path / "offline")
    installed = aiLogic.runBackendAction(BACKEND, "importModel", f"{MODEL_ID}={model['path']}")
    assert installed == [str(tmp_path / "offline" / MODEL_ID / "1.0.0")]


def test_cli_and_panel_declarations(aiLogic, tinyMonaiModels, tmp_path, capsys):
    names = [option.name for option in aiLogic.backendOptions(BACKEND)]
    assert names == ["model", "modelFile", "inputs", "allowDownload", "device", "overlap"]
    assert "brats-gli" in aiLogic.backendOptions(BACKEND)[0].choices
    (volume,), truth = phantomVolume(aiLogic, seed=934, spacing=(1.0, 0.9, 1.2))
    inputPath = aiLogic.saveVolume(volume, str(tmp_path / "phantom.nii.gz"))
    output = tmp_path / "phantom.seg.nrrd"
    code = AISegmentationCLI.main(["segment", BACKEND, inputPath, "--model-file", tinyMonaiModels["phantom"]["path"],
                                   "--device", "cpu", "--overlap", "0.5", "--output", str(output)])
    assert code == 0, capsys.readouterr().err
    loaded = aiLogic.loadVolume(inputPath)
    _requirePhantom(aiLogic, aiLogic.loadSegmentation(str(output)), loaded, truth)
    code = AISegmentationCLI.main(["segment", BACKEND, inputPath, "--model", "brats-gli", "--output",
                                   str(tmp_path / "x.seg.nrrd")])
    assert code == 2 and "'brats-gli' (version 1.0.0) is not installed" in capsys.readouterr().err


def test_missing_and_corrupt_model_zips_give_clear_errors_segmentation_untouched(aiLogic, tinyMonaiModels, tmp_path):
    (volume,), _ = phantomVolume(aiLogic, seed=935)
    segmentation = aiLogic.createSegmentation(volume, "keep")
    aiLogic.addSegment(segmentation, "manual")
    before = sceneSnapshot(aiLogic, segmentation)
    with pytest.raises(ValueError, match="does not exist"):
        aiLogic.startBackend(BACKEND, volume, segmentation, modelFile=str(tmp_path / "none.zip"))
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable MONAI Auto3DSeg model zip"):
        aiLogic.startBackend(BACKEND, volume, segmentation, modelFile=str(tmp_path / "junk.zip"))
    noLabels = tmp_path / "nolabels.zip"
    with zipfile.ZipFile(noLabels, "w") as archive:
        archive.writestr("model.pt", b"x")
    with pytest.raises(ValueError, match="needs model.pt and labels.csv"):
        aiLogic.startBackend(BACKEND, volume, segmentation, modelFile=str(noLabels))
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(tinyMonaiModels["phantom"]["path"]) as source, zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("labels.csv", source.read("labels.csv"))
        archive.writestr("model.pt", source.read("model.pt")[:1000])
    with pytest.raises(ValueError, match="model.pt cannot be loaded"):
        _run(aiLogic, volume, modelFile=str(broken), segmentationNode=segmentation)
    assert sceneSnapshot(aiLogic, segmentation) == before


def _startLongRun(aiLogic, tinyMonaiModels):
    big = makeVolume(aiLogic, np.random.default_rng(5).normal(40, 25, (96, 160, 160)).astype(np.float32), name="big")
    job = aiLogic.startBackend(BACKEND, big, modelFile=tinyMonaiModels["phantom"]["path"], device="cpu",
                               overlap=0.9, environment="isolated")
    return waitForStage(job, "Predicting")


def test_cancel_ends_the_process_tree_and_a_killed_child_is_a_clear_error(aiLogic, tinyMonaiModels):
    (volume,), _ = phantomVolume(aiLogic, seed=936)
    segmentation = aiLogic.createSegmentation(volume, "keep")
    aiLogic.addSegment(segmentation, "manual")
    job = _startLongRun(aiLogic, tinyMonaiModels)
    before = sceneSnapshot(aiLogic, segmentation)
    checkCancelEndsTheProcessTree(job)
    job = _startLongRun(aiLogic, tinyMonaiModels)
    before = sceneSnapshot(aiLogic, segmentation)
    checkKilledChildIsAClearError(job)
    assert sceneSnapshot(aiLogic, segmentation) == before
