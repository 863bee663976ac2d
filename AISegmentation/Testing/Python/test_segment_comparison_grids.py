"""A cohort case whose prediction lies on another grid than its image completes (overview included); a picture that
cannot be drawn is a warning, never the loss of the case's metrics; a step's failure names the step; `batch` shows
its progress and summary without Dask's INFO log unless -v. Real data: TotalSegmentator's example CT and
segmentation, the prediction being the segmentation resampled to 4.5 mm."""

import logging
import os
import subprocess
import sys

import SimpleITK as sitk

from AISegmentationLib.Cohort import CaseTask
from AISegmentationLib.Pictures import Overview

MODULE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _coarsePrediction(sampleFile, folder, spacing=4.5):
    """example_seg.nii.gz resampled (nearest neighbour) to `spacing` mm, same origin and directions."""
    image = sitk.ReadImage(sampleFile("example_seg.nii.gz"))
    size = [int(round(n * s / spacing)) for n, s in zip(image.GetSize(), image.GetSpacing())]
    coarse = sitk.Resample(image, size, sitk.Transform(), sitk.sitkNearestNeighbor, image.GetOrigin(),
                           (spacing,) * 3, image.GetDirection(), 0, image.GetPixelID())
    path = str(folder / "prediction_4.5mm.nii.gz")
    sitk.WriteImage(coarse, path)
    return path


def _case(sampleFile, prediction, name="coarse"):
    return {"case": name, "images": [sampleFile("example_ct_sm.nii.gz")],
            "reference": sampleFile("example_seg.nii.gz"), "prediction": prediction}


def test_a_prediction_on_another_grid_completes_its_case_with_its_overview(logic, sampleFile, tmp_path):
    case = _case(sampleFile, _coarsePrediction(sampleFile, tmp_path))
    record = CaseTask.runCase(case, str(tmp_path / "out"), steps=("compare", "volumes"), logic=logic)
    assert record["status"] == "done", record["error"]
    assert record["warnings"] == []
    overview = tmp_path / "out" / record["outputs"]["overview"]
    assert overview.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    liver = next(entry for entry in record["metrics"] if entry["referenceSegment"] == "Label 5")
    assert 0.8 < liver["dice"] < 1.0  # 3 mm vs 4.5 mm voxels of one liver
    assert len(record["volumes"]) >= 30


def test_a_picture_that_cannot_be_drawn_is_a_warning_and_the_metrics_stay(logic, sampleFile, tmp_path, monkeypatch):
    def brokenOverview(*args, **kwargs):
        raise ValueError("operands could not be broadcast together with shapes (30,101,122) (31,101,122)")

    monkeypatch.setattr(Overview, "segmentationOverview", brokenOverview)
    case = _case(sampleFile, sampleFile("example_seg.nii.gz"), "nopicture")
    record = CaseTask.runCase(case, str(tmp_path / "out"), steps=("compare",), logic=logic)
    assert record["status"] == "done", record["error"]
    assert record["outputs"]["overview"] is None and len(record["metrics"]) == 41
    assert len(record["warnings"]) == 1 and record["warnings"][0].startswith("no overview picture")
    from AISegmentationLib.Cohort import CohortRunner

    # the record proves the case (its outputs, sizes and hashes): a rerun does not redo it for the picture
    assert CohortRunner._unprovenOutputs(str(tmp_path / "out"), "nopicture", record) is None


def test_a_failed_step_is_named_in_the_case_error(logic, sampleFile, tmp_path):
    notAnImage = tmp_path / "reference.nii.gz"
    notAnImage.write_bytes(b"not an image")
    case = {**_case(sampleFile, sampleFile("example_seg.nii.gz"), "badreference"), "reference": str(notAnImage)}
    record = CaseTask.runCase(case, str(tmp_path / "out"), steps=("compare",), logic=logic)
    assert record["status"] == "failed" and record["error"].startswith("compare step: "), record["error"]
    assert "reference.nii.gz" in record["error"]


def test_an_unexpected_error_of_a_step_says_so_in_words(logic, sampleFile, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise IndexError("index 31 is out of bounds for axis 0 with size 30")

    monkeypatch.setattr(logic, "compareLabelmapFiles", broken)
    record = CaseTask.runCase(_case(sampleFile, sampleFile("example_seg.nii.gz"), "bug"), str(tmp_path / "out"),
                              steps=("compare",), logic=logic)
    assert record["status"] == "failed"
    assert record["error"].startswith("the compare step failed unexpectedly (IndexError: index 31"), record["error"]


def test_batch_shows_progress_and_summary_but_not_the_dask_log(sampleFile, tmp_path):
    manifest = tmp_path / "cohort.csv"
    manifest.write_text("case,image,reference,prediction\n"
                        f"one,{sampleFile('example_ct_sm.nii.gz')},{sampleFile('example_seg.nii.gz')},"
                        f"{_coarsePrediction(sampleFile, tmp_path)}\n")
    command = [sys.executable, "-m", "AISegmentationLib.CommandLine", "batch", str(manifest), "--output",
               str(tmp_path / "out"), "--steps", "compare", "--workers", "1"]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300,
                               env=dict(os.environ, PYTHONPATH=MODULE_DIR))
    assert completed.returncode == 0, completed.stderr
    assert "1/1 cases: 1 done" in completed.stderr and "Cohort: 1 cases: 1 done" in completed.stdout
    daskInfo = [line for line in completed.stderr.splitlines()  # warnings (e.g. of a loaded machine) may show
                if line.startswith("INFO") or " - INFO - " in line or "Scheduler at" in line]
    assert daskInfo == []


def test_the_dask_log_level_follows_verbose():
    from AISegmentationLib.CommandLine.Batch import quietDaskLog

    quietDaskLog(verbose=True)
    assert logging.getLogger("distributed").getEffectiveLevel() == logging.INFO
    quietDaskLog(verbose=False)
    assert logging.getLogger("distributed.scheduler").getEffectiveLevel() == logging.WARNING


def test_the_report_draws_the_distance_map_of_each_cases_worst_structure(logic, sampleFile, tmp_path):
    from AISegmentationLib.Cohort import CaseDistanceMap
    from AISegmentationLib.Reports import CohortReport

    case = _case(sampleFile, _coarsePrediction(sampleFile, tmp_path), "worst")
    output = tmp_path / "out"
    record = CaseTask.runCase(case, str(output), steps=("compare",), logic=logic)
    assert record["status"] == "done", record["error"]
    worst = CaseDistanceMap.worstStructure(record["metrics"])
    dices = [row["dice"] for row in record["metrics"] if row["referenceSegment"] and row["comparedSegment"]]
    assert worst["dice"] == min(dices) and record["distanceMapStructure"] == worst["referenceSegment"]
    picture = output / record["outputs"]["distanceMap"]
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and record["outputs"]["distanceMap"] in record["files"]
    html = CohortReport.reportHtml([record], str(output))
    assert f'src="{record["outputs"]["distanceMap"]}"' in html and "Surface distance of" in html
