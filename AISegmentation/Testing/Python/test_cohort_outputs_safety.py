"""Cohort outputs are safe to open and to rerun: CSV cells from label names never run as spreadsheet formulas, the
cohort deletes only the temporaries it wrote, writes only into case folders it owns, reuses a finished case only when
its outputs prove it, and refuses a CUDA case that no local worker could ever take."""

import csv
import json
import os
import threading

import numpy as np
import pytest

from AISegmentationLib.AtomicWrite import TEMPORARY_MARKER
from AISegmentationLib import Manifest
from AISegmentationLib.Cohort import CaseTask, CohortRunner
from AISegmentationLib.Reports import CohortTable
from AISegmentationLib.Cohort.CohortLogic import CohortLogic

FORMULAS = ['=HYPERLINK("http://example.invalid/?x","click")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)",
            "\tTAB", "\rCR"]


def _metric(name, volumeDifference):
    return {"referenceSegment": name, "comparedSegment": name, "dice": 0.5, "jaccard": 1 / 3, "referenceVolume": 1.0,
            "comparedVolume": 2.5, "volumeDifference": volumeDifference, "hausdorff": 2.0, "hausdorff95": 1.0,
            "averageSurfaceDistance": 0.5, "surfaceDice": 0.75, "note": ""}


def _cells(path):
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.reader(file))


def test_csv_cells_from_label_names_never_start_a_formula_and_numbers_stay_numbers(tmp_path):
    records = [{"case": "c1", "status": "done", "error": None, "seconds": 1.0, "steps": ["compare"],
                "inputs": {}, "outputs": {}, "files": {}, "metrics": [_metric(name, -1.5) for name in FORMULAS],
                "volumes": [], "backend": {}}]
    paths = CohortTable.writeCohortTables(records, str(tmp_path))
    for key in ("csv", "summaryCsv"):
        rows = _cells(paths[key])
        header, body = rows[0], rows[1:]
        structures = sorted(row[header.index("structure")] for row in body)
        assert set(structures) == {"'" + name for name in FORMULAS}, key
        for row in body:
            assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for cell in row), row
    table = _cells(paths["csv"])
    column = table[0].index("volumeDifference")
    assert {row[column] for row in table[1:]} == {"-1.5"}  # a negative number is not text: left as it is


def test_comparison_csv_neutralises_segment_names(tmp_path):
    from AISegmentationLib.Comparison import SegmentComparison, SegmentComparisonMRML

    mask = np.zeros((6, 6, 6), bool)
    mask[2:4, 2:4, 2:4] = True
    result = SegmentComparison.compareMasks(mask, mask, (1.0, 1.0, 1.0), device="cpu")
    rows = [{"referenceSegment": "=1+1", "comparedSegment": "@cmd", "result": result}]
    body = _cells(SegmentComparisonMRML.rowsToCsv(rows, tmp_path / "comparison.csv"))[1]
    assert body[:2] == ["'=1+1", "'@cmd"] and float(body[2]) == 1.0


def test_csv_output_module():
    from AISegmentationLib.CsvOutput import csvText, safeCell

    assert [safeCell(value) for value in ("-1.5", "+2", "-inf", "1e-3", -3.0, None, "a=b")] == \
        ["-1.5", "+2", "-inf", "1e-3", -3.0, "", "a=b"]
    assert [safeCell(value) for value in ("-1+2", "=A1", "@x", "\tx", "\rx", "-")] == \
        ["'-1+2", "'=A1", "'@x", "'\tx", "'\rx", "'-"]
    assert csvText(["a", "b"], [["=1,2", 3]]) == "a,b\n\"'=1,2\",3\n"


# Temporaries and case folders ------------------------------------------------------------------------------------

@pytest.fixture
def predictionCase(sampleFile):
    return Manifest.case("ct", [sampleFile("example_ct_sm.nii.gz")], prediction=sampleFile("example_seg.nii.gz"))


def test_only_the_tools_own_temporaries_in_its_own_case_folders_are_removed(logic, tmp_path, predictionCase):
    output = tmp_path / "out"
    userFiles = [output / "mydocs" / "thesis.tmp-final.docx", output / "cases" / "ct" / "notes.tmp-1.txt",
                 output / "cases" / "ct" / "sub" / f"kept{TEMPORARY_MARKER}0a1b2c3d.png",
                 output / f"draft{TEMPORARY_MARKER}final.txt"]
    for path in userFiles:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("a user's file")
    leftover = output / "cases" / "ct" / f"ct_overview{TEMPORARY_MARKER}0a1b2c3d.png"
    leftover.write_bytes(b"a stopped write")
    record, = CohortRunner.runCasesInProcess([predictionCase], str(output), ("volumes",), logic=logic)
    assert record["status"] == "done", record["error"]
    assert not leftover.exists()
    result = CohortRunner.CohortResult([], {"done": 0, "failed": 0, "skipped": 0, "cancelled": 1, "total": 1}, {},
                                       1.0, cancelled=True, started=0.0)
    CohortRunner.adoptRecordsWrittenMeanwhile(result, [predictionCase], str(output), 0.0)  # the cohort's clean-up
    assert [path for path in userFiles if not path.exists()] == []


def test_a_planted_link_as_case_folder_is_refused_and_nothing_is_written_through_it(logic, tmp_path, predictionCase):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out" / "cases").mkdir(parents=True)
    os.symlink(elsewhere, tmp_path / "out" / "cases" / "ct")
    with pytest.raises(ValueError, match=r"cases/ct' is a link or not a folder.*outside"):
        CohortRunner.runCasesInProcess([predictionCase], str(tmp_path / "out"), ("volumes",), logic=logic)
    assert os.listdir(elsewhere) == []
    os.remove(tmp_path / "out" / "cases" / "ct")
    os.rmdir(tmp_path / "out" / "cases")
    os.symlink(elsewhere, tmp_path / "out" / "cases")  # the cases folder itself
    with pytest.raises(ValueError, match="is a link or not a folder"):
        CohortLogic(logic).runCohort([predictionCase], str(tmp_path / "out"), steps=("volumes",))
    assert os.listdir(elsewhere) == []


def test_case_ids_equal_ignoring_case_are_refused(logic, tmp_path, sampleFile):
    image = sampleFile("example_ct_sm.nii.gz")
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"case,image\nCase1,{image}\ncase1,{image}\n")
    with pytest.raises(ValueError, match=r"line 3: case ids 'Case1' \(line 2\) and 'case1' differ only in upper"):
        Manifest.readManifest(str(manifest))
    cases = [Manifest.case("Case1", [image]), Manifest.case("case1", [image])]
    with pytest.raises(ValueError, match="'Case1' and 'case1' differ only in upper and lower case"):
        CohortLogic(logic).runCohort(cases, str(tmp_path / "out"), steps=("volumes",))
    assert not (tmp_path / "out").exists()


# Resume ------------------------------------------------------------------------------------------------------------

def test_a_forged_done_record_is_not_reused_only_one_whose_outputs_prove_it(logic, tmp_path, predictionCase):
    output = str(tmp_path / "out")
    steps = ("volumes",)
    record, = CohortRunner.runCasesInProcess([predictionCase], output, steps, logic=logic)
    assert record["status"] == "done", record["error"]
    reused, _ = CohortRunner.planCases([predictionCase], output, steps, None, None)
    assert [r["case"] for r in reused] == ["ct"]  # the genuine record is reused
    configuration = CaseTask.configurationKey(predictionCase, steps, None, {})
    forged = Manifest.case("forged", predictionCase["images"], prediction=predictionCase["prediction"])
    fake = {"case": "forged", "status": "done", "configuration": configuration, "outputs": {"record": "x"},
            "files": {}, "metrics": [{"referenceSegment": "liver", "dice": 0.9998}], "volumes": []}
    os.makedirs(CaseTask.caseFolder(output, "forged"))
    recordPath = CaseTask.recordPath(output, "forged")
    variants = [fake,  # no outputs, no files
                {**fake, "outputs": record["outputs"], "files": record["files"]},  # another case's files
                {**fake, "outputs": {**record["outputs"], "segmentation": "/etc/hostname"}},  # outside, unlisted
                {**record, "case": "forged", "files": {}}]  # outputs named, none listed with its hash
    for variant in variants:
        with open(recordPath, "w", encoding="utf-8") as file:
            json.dump(variant, file)
        assert CohortRunner.finishedRecord(output, forged, configuration) is None, variant
    reused, toRun = CohortRunner.planCases([predictionCase, forged], output, steps, None, None)
    assert [r["case"] for r in reused] == ["ct"] and [c["case"] for c in toRun] == ["forged"]


# Devices -----------------------------------------------------------------------------------------------------------

def _hasNvidiaGpu():
    from AISegmentationLib.Backends.Environments.TorchSelection import nvidiaDriverVersion

    return nvidiaDriverVersion() is not None


@pytest.mark.skipif(_hasNvidiaGpu(), reason="this computer has an NVIDIA GPU: a cuda case can run here")
def test_a_cuda_case_on_a_local_cluster_without_gpu_is_refused_before_starting(logic, tmp_path, sampleFile):
    cases = [Manifest.case("cpu_case", [sampleFile("example_ct_sm.nii.gz")]),
             Manifest.case("gpu_case", [sampleFile("example_ct_sm.nii.gz")], options={"device": "cuda"})]
    outcome, cancel = {}, threading.Event()

    def run():
        try:
            outcome["result"] = CohortLogic(logic).runCohort(cases, str(tmp_path / "out"), steps=("segment",), backend="nnunet",
                                                backendOptions={"modelFolders": [str(tmp_path / "model")],
                                                                "device": "cpu"},
                                                workers=1, cancelEvent=cancel)
        except Exception as error:  # noqa: BLE001 - the test looks at it
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(90)
    if thread.is_alive():  # it waits for a GPU worker that never comes: stop it, the test has failed
        cancel.set()
        thread.join(120)
    assert isinstance(outcome.get("error"), ValueError), outcome
    assert "'gpu_case'" in str(outcome["error"]) and "no NVIDIA GPU" in str(outcome["error"])
    assert not (tmp_path / "out").exists()
