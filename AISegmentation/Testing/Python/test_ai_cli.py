"""``aisegmentation segment nnunet|totalsegmentator`` on files: real inference with the tiny models, through the
CLI's own main() (its segment subcommands are generated from the backends' declarations)."""

import os

import pytest

from AISegmentationLib.CommandLine import Main as AISegmentationCLI
from DevTools.SyntheticImages import dice
from DevTools.TinyModels import (aiLogic, nnunetEnvironment, phantomVolume, segmentArrays, tinyModels,  # noqa: F401
                                 totalSegmentatorEnvironment, totalSegmentatorHome)

pytestmark = pytest.mark.slow


def _cli(argv, logic):
    """Exit code of the CLI for argv, as Scripts/aisegmentation would return it."""
    return AISegmentationCLI.main(argv)


def test_segment_nnunet_writes_seg_nrrd_with_dataset_json_names(aiLogic, tinyModels, tmp_path, capsys):
    (volume,), truth = phantomVolume(aiLogic, seed=921, spacing=(0.9, 1.0, 1.1), origin=(3.0, -2.0, 5.0))
    inputPath = aiLogic.saveVolume(volume, str(tmp_path / "phantom.nii.gz"))
    output = tmp_path / "phantom.seg.nrrd"
    code = _cli(["segment", "nnunet", inputPath, "--model", tinyModels["phantomModel"], "--folds", "all", "--no-tta",
                 "--device", "cpu", "--output", str(output), "--labelmap-output", str(tmp_path / "labels.nii.gz")],
                aiLogic)
    assert code == 0, capsys.readouterr().err
    assert "nnU-Net on cpu" in capsys.readouterr().out
    loaded = aiLogic.loadVolume(inputPath)
    arrays = segmentArrays(aiLogic, aiLogic.loadSegmentation(str(output)), loaded)
    assert set(arrays) == {"bright_sphere", "dark_sphere"}
    assert dice(arrays["bright_sphere"], truth == 1) >= 0.9 and dice(arrays["dark_sphere"], truth == 2) >= 0.9
    assert os.path.isfile(tmp_path / "labels.nii.gz")


def test_segment_errors_exit_2_with_a_message(aiLogic, tinyModels, tmp_path, capsys):
    (volume,), _ = phantomVolume(aiLogic, seed=922)
    inputPath = aiLogic.saveVolume(volume, str(tmp_path / "phantom.nii.gz"))
    code = _cli(["segment", "nnunet", inputPath, "--model", str(tmp_path), "--output", str(tmp_path / "x.seg.nrrd")],
                aiLogic)
    assert code == 2 and "lacks dataset.json and plans.json" in capsys.readouterr().err
    assert not (tmp_path / "x.seg.nrrd").exists()


def test_segment_totalsegmentator_options_reach_the_backend(aiLogic, totalSegmentatorEnvironment, totalSegmentatorHome,
                                                             sampleFile, tmp_path, capsys, monkeypatch):
    """(The real TotalSegmentator runs are in test_ai_totalsegmentator.py; here: the CLI's path into them.)"""
    monkeypatch.setenv("AISEGMENTATION_TOTALSEG_HOME_DIR", totalSegmentatorHome)
    ct = sampleFile("example_ct_sm.nii.gz")
    code = _cli(["segment", "totalsegmentator", ct, "--task", "nope", "--output", str(tmp_path / "y.seg.nrrd")],
                aiLogic)
    assert code == 2 and "Unknown TotalSegmentator task 'nope'" in capsys.readouterr().err
    code = _cli(["segment", "totalsegmentator", ct, "--fast", "--roi-subset", "not_an_organ", "--device", "cpu",
                 "--no-download", "--output", str(tmp_path / "z.seg.nrrd")], aiLogic)
    assert code == 2 and "roi_subset names not in task 'total': not_an_organ" in capsys.readouterr().err
    assert not (tmp_path / "y.seg.nrrd").exists() and not (tmp_path / "z.seg.nrrd").exists()
