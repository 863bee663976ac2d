"""MOOSE through the Logic and the CLI: the real ``moosez`` package (its ``moose()`` API, its model metadata, its
nnU-Net predictor and chunking), in its isolated environment, with the tiny phantom nnU-Net installed as one of
MOOSE's models in MOOSE's own layout (see DevTools/TinyMoose.py), offline."""

import os
import time

import numpy as np
import pytest
from DevTools.build_tiny_models import phantomCase
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, makeVolume, sceneSnapshot
from DevTools.TinyModels import (aiLogic, labelmapToWorld, nnunetEnvironment, phantomVolume,  # noqa: F401
                                 segmentArrays, tinyModels, volumeToWorld)
from DevTools.TinyMoose import (TINY_MOOSE_LABELS, TINY_MOOSE_MODEL, TINY_MOOSE_SECOND_MODEL,  # noqa: F401
                               mooseEnvironment, mooseHome, permutedPhantomModel, twoMooseModelsHome)

from AISegmentationLib.Backends.Moose.MooseBackend import KNOWN_MODELS, modelModality
from AISegmentationLib.CommandLine import Main as AISegmentationCLI
from BackendChecks import (checkCancelEndsTheProcessTree, checkKilledChildIsAClearError, requireLabelDice,
                           waitForStage)

pytestmark = pytest.mark.slow

LABELS = {name: value for name, value in TINY_MOOSE_LABELS.items() if value}
SNOMED = {"skull": "118646007", "trachea": "44567001"}  # moosez's own mapping (mappings/SNOMED.py)


@pytest.fixture
def mooseLogic(aiLogic, mooseHome):
    aiLogic.backendSettings("moose")["home"] = mooseHome
    return aiLogic


def _requirePhantomResult(logic, segmentation, volume, truth):
    return requireLabelDice(logic, segmentation, volume, truth, LABELS)


def test_model_list_comes_from_the_package(mooseEnvironment, aiLogic):
    models = aiLogic.aiEnvironments.probe("moose")["models"]
    assert tuple(entry["name"] for entry in models) == KNOWN_MODELS  # the static list is the pinned package's
    assert all(entry["modality"] == modelModality(entry["name"]) for entry in models)
    byName = {entry["name"]: entry for entry in models}
    assert byName["clin_ct_organs"]["folderName"] == "Dataset123_Organs"
    assert byName["clin_ct_body_composition"]["workflow"] == ["clin_ct_fast_vertebrae", "clin_ct_body_composition"]
    assert byName["clin_pt_fdg_brain_v1"]["modality"] == "PT_FDG"


def test_phantom_dice_names_terminology_exact_geometry_provenance(mooseLogic):
    (volume,), truth = phantomVolume(mooseLogic, seed=931, spacing=(0.9, 1.0, 1.2), origin=(12.5, -40.0, 7.25),
                                     directions=OBLIQUE_DIRECTIONS)
    progress = []
    segmentation = mooseLogic.runBackend("moose", volume, environment="isolated", device="cpu",
                                         progressCallback=lambda p, m: progress.append((p, m)))
    scores = _requirePhantomResult(mooseLogic, segmentation, volume, truth)
    print(f"MOOSE tiny model Dice: {scores}")
    from AISegmentationLib.Segments import segmentTag

    colors = set()
    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        np.testing.assert_allclose(labelmapToWorld(segmentation, segmentId), volumeToWorld(volume), atol=1e-6)
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        tag = segmentTag(segment, "TerminologyEntry")
        assert f"SCT^{SNOMED[segment.GetName()]}^" in tag and "SCT^123037004^Anatomical Structure" in tag
        assert segmentTag(segment, "AISegmentation.labelValue") == str(LABELS[segment.GetName()])
        colors.add(tuple(round(channel, 3) for channel in segment.GetColor()))
    assert len(colors) == len(LABELS)
    assert segmentation.GetAttribute("AISegmentation.backend") == "MOOSE"
    assert f"MOOSE model '{TINY_MOOSE_MODEL}'" in segmentation.GetAttribute("AISegmentation.model")
    assert '"moosez": "3.2.2"' in segmentation.GetAttribute("AISegmentation.version")
    assert segmentation.GetAttribute("AISegmentation.device") == "cpu"
    assert segmentation.GetAttribute("AISegmentation.environment") == "isolated:moose"
    assert progress[-1][0] == 100 and any(message.startswith("Segmenting with MOOSE") for _, message in progress)


def test_cli_two_models_in_one_run_are_one_segmentation_without_label_clashes(aiLogic, twoMooseModelsHome, tmp_path,
                                                                              capsys, monkeypatch):
    """Both tiny models (DevTools/TinyMoose.py: the second is the first's network with reordered output channels)
    run in one moose() call from the generated CLI: the first's "skull" (value 1) survives, the second's values come
    after the first's highest (its "body" 1 -> 3, "lung" 2 -> 4), and the dark sphere both predict goes to the later
    model ("lung"; the first's "trachea" is left empty, so it has no segment). Each Dice against the phantom's truth
    proves that each model's own prediction reached the merge. (One model from the CLI: the same code path with a
    list of one; the Logic's single-model run is test_phantom_dice_names_terminology_exact_geometry_provenance.)"""
    monkeypatch.setenv("AISEGMENTATION_MOOSE_HOME_DIR", twoMooseModelsHome)
    (volume,), truth = phantomVolume(aiLogic, seed=932, spacing=(1.1, 0.9, 1.0), origin=(3.0, -2.0, 5.0))
    inputPath = aiLogic.saveVolume(volume, str(tmp_path / "phantom.nii.gz"))
    output = tmp_path / "phantom.seg.nrrd"
    code = AISegmentationCLI.main(["segment", "moose", inputPath, "--model", TINY_MOOSE_MODEL,
                                   TINY_MOOSE_SECOND_MODEL, "--device", "cpu", "--no-download", "--output",
                                   str(output)])
    assert code == 0, capsys.readouterr().err
    loaded, segmentation = aiLogic.loadVolume(inputPath), aiLogic.loadSegmentation(str(output))
    scores = requireLabelDice(aiLogic, segmentation, loaded, truth, {"skull": 1, "body": 0, "lung": 2})
    print(f"MOOSE two tiny models Dice: {scores}")
    from AISegmentationLib.Segments import segmentTag

    segments = [segmentation.GetSegmentation().GetSegment(segmentId)
                for segmentId in segmentation.GetSegmentation().GetSegmentIDs()]
    assert {segment.GetName(): segmentTag(segment, "AISegmentation.labelValue") for segment in segments} == {
        "skull": "1", "body": "3", "lung": "4"}
    with pytest.raises(SystemExit) as exit:  # the model's choices are in the generated argument
        AISegmentationCLI.main(["segment", "moose", inputPath, "--model", "clin_ct_nothing", "--output",
                                str(tmp_path / "x.seg.nrrd")])
    assert exit.value.code == 2 and "invalid choice: 'clin_ct_nothing'" in capsys.readouterr().err
    assert not (tmp_path / "x.seg.nrrd").exists()


def test_non_ct_and_wrong_input_count_are_clear_errors_segmentation_untouched(mooseLogic):
    (volume,), truth = phantomVolume(mooseLogic, seed=933)
    shifted = makeVolume(mooseLogic, phantomCase(933)[0][0] + 1000.0, name="not a CT")  # all above -200
    segmentation = mooseLogic.createSegmentation(volume, "keep")
    mooseLogic.addSegment(segmentation, "manual")
    before = sceneSnapshot(mooseLogic, segmentation)
    with pytest.raises(ValueError, match=r"takes a CT in Hounsfield units.*does not look like a CT"):
        mooseLogic.runBackend("moose", shifted, segmentation, device="cpu")
    with pytest.raises(ValueError, match=r"takes 1 input volume\(s\) \(CT\), got 2"):
        mooseLogic.runBackend("moose", [volume, volume], segmentation, device="cpu")
    assert sceneSnapshot(mooseLogic, segmentation) == before
    result = mooseLogic.runBackend("moose", volume, segmentation, device="cpu", checkModality=False)
    assert set(segmentArrays(mooseLogic, result, volume)) == {"manual", *LABELS}


def test_missing_model_offline_or_without_downloads_is_a_clear_error(mooseLogic, monkeypatch):
    (volume,), _ = phantomVolume(mooseLogic, seed=934)
    nodes = mooseLogic.scene.GetNumberOfNodes()
    monkeypatch.setenv("AISEGMENTATION_OFFLINE", "1")
    start = time.time()
    with pytest.raises(ValueError, match=r"model 'clin_ct_fast_organs' is not installed \(Dataset145_Fast_organs "
                                         r"not found in .*\) and there is no network connection"):
        mooseLogic.runBackend("moose", volume, model="clin_ct_fast_organs", device="cpu")
    assert time.time() - start < 60
    monkeypatch.delenv("AISEGMENTATION_OFFLINE")
    with pytest.raises(ValueError, match=r"'clin_ct_body_composition' is not installed \(Dataset112_FastVertebrae, "
                                         r"Dataset778_Body_composition not found.*downloads are switched off"):
        mooseLogic.runBackend("moose", volume, model="clin_ct_body_composition", allowDownload=False, device="cpu")
    assert mooseLogic.scene.GetNumberOfNodes() == nodes


def _startLongRun(logic, volume):
    return waitForStage(logic.startBackend("moose", volume, device="cpu"), "Segmenting", prefix=True, settle=1.0)


def test_cancel_ends_the_process_tree_and_a_killed_child_is_a_clear_error(mooseLogic):
    (volume,), _ = phantomVolume(mooseLogic, seed=935)
    segmentation = mooseLogic.createSegmentation(volume, "keep")
    mooseLogic.addSegment(segmentation, "manual")
    big = makeVolume(mooseLogic, np.full((128, 192, 192), -1000.0, np.float32), name="big")
    before = sceneSnapshot(mooseLogic, segmentation)
    job = _startLongRun(mooseLogic, big)
    workDir = checkCancelEndsTheProcessTree(job)
    assert not os.path.exists(workDir)
    job = _startLongRun(mooseLogic, big)
    checkKilledChildIsAClearError(job)
    assert sceneSnapshot(mooseLogic, segmentation) == before
