"""Cohorts on a Dask LocalCluster of 2 worker processes with the tiny nnU-Net phantom model (device cpu, no
mirroring): phantom cases with reference label maps, TotalSegmentator's real example CT, a corrupt case; the table,
the plots and the report; resume and redo of an altered case; a worker killed mid-run; a worker dying too often;
cancel. Everything through the real Logic, the real backend and real Dask processes."""

import csv
import json
import os
import shutil
import signal
import threading
import time

import numpy as np
import pytest
from DevTools.SyntheticCohort import PHANTOM_NAMES, phantomModelOptions, writeManifest, writePhantomCohort
from DevTools.TinyModels import nnunetEnvironment, tinyModels  # noqa: F401 - fixtures

from AISegmentationLib.AtomicWrite import isTemporaryName
from AISegmentationLib.Cluster import ClusterConnection
from AISegmentationLib.Cohort import CaseTask, CohortRunner
from AISegmentationLib.Cohort.CohortLogic import CohortLogic

pytestmark = pytest.mark.slow


def _temporaryLeftovers(folder):
    return [os.path.join(root, name) for root, folders, files in os.walk(folder) for name in folders + files
            if isTemporaryName(name)]


def _records(outputDir):
    records = {}
    for caseId in os.listdir(os.path.join(outputDir, CaseTask.CASES_FOLDER)):
        path = CaseTask.recordPath(outputDir, caseId)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as file:
                records[caseId] = json.load(file)
    return records


def _tableRows(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def _labelValues(path):
    import SimpleITK as sitk

    return set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(path))).tolist()) - {0}


def test_cohort_phantoms_real_ct_corrupt_case_report_resume_and_redo(logic, tinyModels, sampleFile, tmp_path):
    rows = writePhantomCohort(logic, tmp_path, 8)
    corrupt = tmp_path / "images" / "corrupt.nii.gz"
    data = open(tmp_path / rows[0]["image"], "rb").read()
    corrupt.write_bytes(data[: len(data) // 2])
    reference, prediction = sampleFile("example_seg.nii.gz"), sampleFile("example_seg_fast.nii.gz")
    rows += [{"case": "corrupt", "image": "images/corrupt.nii.gz", "reference": rows[0]["reference"]},
             # TotalSegmentator's fast (3 mm) output of the real CT compared with its full-resolution output
             {"case": "ct_fast_vs_full", "image": sampleFile("example_ct_sm.nii.gz"), "reference": reference,
              "prediction": prediction}]
    manifest = writeManifest(tmp_path / "cohort.csv", rows)
    output = tmp_path / "out"
    options = phantomModelOptions(tinyModels)
    progress = []
    started = time.time()
    result = CohortLogic(logic).runCohort(str(manifest), str(output), backend="nnunet", backendOptions=options, workers=2,
                             progressCallback=progress.append)
    firstSeconds = time.time() - started
    print(f"\nfirst run: 10 cases in {firstSeconds:.1f} s")
    assert result.counts == {"done": 9, "failed": 1, "skipped": 0, "cancelled": 0, "total": 10}
    assert result.dashboard.startswith("http://127.0.0.1:")
    assert progress[-1].finished == 10 and progress[-1].remaining == 0
    assert [p.finished for p in progress] == sorted(p.finished for p in progress)
    failed, = result.failedCases
    assert failed["case"] == "corrupt" and "incomplete or corrupt" in failed["error"]
    records = _records(output)
    assert sorted(records) == sorted(row["case"] for row in rows)
    assert records["corrupt"]["status"] == "failed" and records["corrupt"]["error"] == failed["error"]
    assert len({record["worker"] for record in records.values()}) == 2  # both worker processes took cases
    assert all(record["worker"].split(":")[-1] != str(os.getpid()) for record in records.values())

    table = _tableRows(result.outputs["csv"])
    phantomRows = [row for row in table if row["case"].startswith("phantom")]
    assert len(phantomRows) == 16 and {row["structure"] for row in phantomRows} == set(PHANTOM_NAMES.values())
    assert all(row["referenceSegment"] == row["comparedSegment"] for row in phantomRows)  # matched by name
    assert min(float(row["dice"]) for row in phantomRows) >= 0.9
    ctRows = [row for row in table if row["case"] == "ct_fast_vs_full"]
    common = _labelValues(reference) & _labelValues(prediction)
    # every structure of either side is a row; those on one side only have Dice 0 and a note
    assert len(ctRows) == len(_labelValues(reference) | _labelValues(prediction))
    bothRows = [row for row in ctRows if row["referenceSegment"] and row["comparedSegment"]]
    assert len(bothRows) == len(common) > 20  # label value pairs present in both outputs
    assert all(float(row["dice"]) == 0 and row["note"] for row in ctRows if row not in bothRows)
    ctDice = sorted(float(row["dice"]) for row in bothRows)
    print(f"real CT, fast vs full TotalSegmentator: {len(ctRows)} structures, median Dice "
          f"{np.median(ctDice):.3f}, lowest {ctDice[0]:.3f}")
    assert 0.5 < np.median(ctDice) < 1.0
    ct = records["ct_fast_vs_full"]
    assert len(ct["volumes"]) == len(_labelValues(prediction)) and ct["backend"] == {"prediction": prediction}
    assert records["phantom000"]["backend"]["name"] == "nnU-Net"
    assert records["phantom000"]["backend"]["parameters"]["tta"] is False
    for record in records.values():
        for relative, expected in record["files"].items():
            assert os.path.getsize(output / relative) == expected["size"]
    for key in ("parquet", "summaryCsv", "report"):
        assert os.path.getsize(result.outputs[key]) > 0
    report = open(result.outputs["report"], encoding="utf-8").read()
    assert all(row["case"] in report for row in rows)
    assert not _temporaryLeftovers(output)

    started = time.time()
    again = CohortLogic(logic).runCohort(str(manifest), str(output), backend="nnunet", backendOptions=options, workers=2)
    print(f"rerun: {time.time() - started:.1f} s, {again.counts}")
    assert again.counts == {"done": 0, "failed": 1, "skipped": 9, "cancelled": 0, "total": 10}
    assert _records(output)["phantom003"] == records["phantom003"]  # not run again: same record, same timing
    assert again.seconds < firstSeconds / 2

    altered = output / records["phantom003"]["outputs"]["labelmap"]
    shutil.copyfile(output / records["phantom004"]["outputs"]["labelmap"], altered)
    redo = CohortLogic(logic).runCohort(str(manifest), str(output), backend="nnunet", backendOptions=options, workers=2)
    assert redo.counts == {"done": 1, "failed": 1, "skipped": 8, "cancelled": 0, "total": 10}
    redone = _records(output)["phantom003"]
    assert redone["worker"] != records["phantom003"]["worker"] or redone["seconds"] != records["phantom003"]["seconds"]
    assert CohortRunner.finishedRecord(str(output), {"case": "phantom003"}, redone["configuration"]) is not None
    cases = CohortLogic(logic).readCohortManifest(str(manifest))
    for steps, changedOptions in ((("segment", "volumes"), options), (CaseTask.STEPS, dict(options, stepSize=0.75))):
        reused, toRun = CohortRunner.planCases(cases, str(output), steps, "nnunet", changedOptions)
        assert not reused and len(toRun) == 10  # other steps or options: a different configuration, redone


def _waitFor(condition, timeout, what):
    end = time.time() + timeout
    while time.time() < end:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runInThread(target):
    outcome = {}

    def run():
        try:
            outcome["result"] = target()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def _killWorkerRunningACase(client):
    """SIGKILL the worker process of a case that has run for a moment; returns (case key, pid)."""
    processing = _waitFor(lambda: {worker: keys for worker, keys in client.processing().items() if keys}, 60,
                          "a case to start")
    time.sleep(2.0)  # inside the case: loading, the backend's child process or writing its outputs
    worker, keys = next(iter(processing.items()))
    pid = client.run(os.getpid, workers=[worker])[worker]
    os.kill(pid, signal.SIGKILL)
    return keys[0], pid


def test_killed_worker_case_is_retried_and_every_case_finishes_without_partial_files(logic, tinyModels, tmp_path):
    from AISegmentationLib.Manifest import readManifest

    cases = readManifest(writeManifest(tmp_path / "cohort.csv", writePhantomCohort(logic, tmp_path, 2)))
    output = str(tmp_path / "out")
    cluster, client = ClusterConnection.openLocalCluster(workers=2)
    try:
        thread, outcome = _runInThread(lambda: CohortRunner.runCohort(
            client, cases, output, backend="nnunet", backendOptions=phantomModelOptions(tinyModels)))
        key, pid = _killWorkerRunningACase(client)
        thread.join(timeout=240)
    finally:
        client.close()
        cluster.close()
    assert "error" not in outcome, outcome.get("error")
    result = outcome["result"]
    assert result.counts["done"] == 2 and result.counts["failed"] == 0, result.counts
    records = _records(output)
    killedCase = next(case["case"] for case in cases if key.startswith(f"case-{case['case']}-"))
    assert records[killedCase]["status"] == "done" and not records[killedCase]["worker"].endswith(f":{pid}")
    for case in cases:  # every output whole: size and SHA-256 as recorded
        assert CohortRunner.finishedRecord(output, case, records[case["case"]]["configuration"]) is not None
    assert not _temporaryLeftovers(output)


def test_a_case_whose_worker_dies_too_often_is_a_failed_record(logic, tinyModels, tmp_path):
    from AISegmentationLib.Manifest import readManifest

    cases = readManifest(writeManifest(tmp_path / "cohort.csv", writePhantomCohort(logic, tmp_path, 1)))
    output = str(tmp_path / "out")
    cluster, client = ClusterConnection.openLocalCluster(workers=1, allowedFailures=0)
    try:
        thread, outcome = _runInThread(lambda: CohortRunner.runCohort(
            client, cases, output, backend="nnunet", backendOptions=phantomModelOptions(tinyModels)))
        _killWorkerRunningACase(client)
        thread.join(timeout=120)
    finally:
        client.close()
        cluster.close()
    result = outcome["result"]
    assert result.counts["failed"] == 1
    assert "worker died 1 times" in result.failedCases[0]["error"]
    assert not _temporaryLeftovers(output)


def test_cancel_stops_running_cases_and_reports_what_is_done(logic, tinyModels, tmp_path):
    cases = writePhantomCohort(logic, tmp_path, 6)
    manifest = writeManifest(tmp_path / "cohort.csv", cases)
    output = str(tmp_path / "out")
    cancel = threading.Event()
    cancelledAt = {}

    def onProgress(progress):
        if progress.finished >= 1 and not cancel.is_set():
            cancelledAt["time"] = time.time()
            cancel.set()

    result = CohortLogic(logic).runCohort(manifest, output, backend="nnunet", backendOptions=phantomModelOptions(tinyModels),
                             workers=2, progressCallback=onProgress, cancelEvent=cancel)
    stopSeconds = time.time() - cancelledAt["time"]
    print(f"\ncancel: {result.counts}, stopped {stopSeconds:.1f} s after the cancel")
    assert result.cancelled and result.counts["failed"] == 0
    assert result.counts["cancelled"] >= 3 and result.counts["done"] + result.counts["cancelled"] == 6
    assert stopSeconds < 20  # the running case's backend job was cancelled, not waited for
    records = _records(output)
    assert sorted(records) == sorted(r["case"] for r in result.records)  # cancelled cases wrote no record
    assert all(record["status"] == "done" for record in records.values())
    assert not _temporaryLeftovers(output)


def test_dicom_input_case_gets_a_dicom_seg_of_its_series_in_process(logic, tmp_path):
    import pydicom
    from DevTools.DicomSeries import seriesWithUids

    from AISegmentationLib.Manifest import case
    from AISegmentationLib.SampleData import fetchDicomSeries, fetchSampleFile

    series = seriesWithUids(fetchDicomSeries(), str(tmp_path / "series"))
    labels = fetchSampleFile("example_seg_dicom.nii.gz")  # TotalSegmentator's output for this series
    anonymized = fetchDicomSeries()  # the example series as published: its Study/Series UIDs are empty
    record, raw = CohortRunner.runCasesInProcess([case("ct_dicom", [series], prediction=labels),
                                                  case("ct_dicom_no_uids", [anonymized], prediction=labels)],
                                                 str(tmp_path / "out"), ("segment", "volumes"), logic=logic)
    assert raw["status"] == "done" and raw["outputs"]["dicomSeg"] is None and raw["outputs"]["segmentation"]
    assert len(raw["warnings"]) == 1 and raw["warnings"][0].startswith("no DICOM SEG: ") and "UID" in raw["warnings"][0]
    assert not record["warnings"]
    assert record["status"] == "done", record["error"]
    assert record["inputs"]["dicom"] and len(record["volumes"]) == len(_labelValues(labels))
    segPath = tmp_path / "out" / record["outputs"]["dicomSeg"]
    assert record["files"][record["outputs"]["dicomSeg"]]["size"] == os.path.getsize(segPath)
    seg = pydicom.dcmread(segPath)
    source = pydicom.dcmread(os.path.join(series, sorted(os.listdir(series))[0]))
    assert seg.Modality == "SEG" and seg.StudyInstanceUID == source.StudyInstanceUID
    assert seg.ReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert len(seg.SegmentSequence) == len(_labelValues(labels))
    # voxel for voxel: the SEG read back (highdicom) against the case's own label map, per label
    import SimpleITK as sitk

    from AISegmentationLib.Dicom.DicomSeg import readDicomSeg
    from AISegmentationLib.SegmentationIO import readLabelNames

    segLabels, segNames = readDicomSeg(str(segPath), series)
    caseLabels = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "out" / record["outputs"]["labelmap"])))
    caseNames = readLabelNames(str(tmp_path / "out" / record["outputs"]["labels"]))
    assert segLabels.shape == caseLabels.shape
    for value, count in zip(*np.unique(caseLabels, return_counts=True)):
        assert (segLabels == value).sum() == count, value
    assert segNames == caseNames


def test_a_case_that_finished_while_being_cancelled_is_counted_from_its_record(logic, tmp_path, sampleFile):
    """The runner saw no result for a case whose worker finished it as the cancel came: once the workers stopped,
    its record on disk is counted (done, not cancelled), the report lists it, and a stopped write leaves nothing."""
    from AISegmentationLib.Manifest import case

    cases = [case("ct", [sampleFile("example_ct_sm.nii.gz")], prediction=sampleFile("example_seg.nii.gz")),
             case("never_ran", [sampleFile("example_ct_sm.nii.gz")], prediction=sampleFile("example_seg.nii.gz"))]
    started = time.time()
    record, = CohortRunner.runCasesInProcess(cases[:1], str(tmp_path), ("volumes",), logic=logic)
    from AISegmentationLib.AtomicWrite import TEMPORARY_MARKER

    (tmp_path / "cases" / "ct" / f"ct_overview{TEMPORARY_MARKER}0a1b2c3d.png").write_bytes(b"cut")  # a stopped write
    assert _temporaryLeftovers(tmp_path)
    result = CohortRunner.CohortResult([], {"done": 0, "failed": 0, "skipped": 0, "cancelled": 2, "total": 2}, {},
                                       1.0, cancelled=True, started=started)
    CohortRunner.adoptRecordsWrittenMeanwhile(result, cases, str(tmp_path), started)
    assert result.counts == {"done": 1, "failed": 0, "skipped": 0, "cancelled": 1, "total": 2}
    assert [r["case"] for r in result.records] == ["ct"] and result.records[0]["status"] == record["status"] == "done"
    with open(result.outputs["report"], encoding="utf-8") as file:
        assert ">ct <small>(done" in file.read()
    assert not _temporaryLeftovers(tmp_path)
