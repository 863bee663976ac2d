"""The command line, run as a user runs it: a child process on files."""

import numpy as np
import pytest

from AISegmentationLib.Runtime import isDesktopSlicer
from CommandLineProcess import runCli as run

# The command line is the headless entry point: inside desktop Slicer, sys.executable is not a Python interpreter.
pytestmark = pytest.mark.skipif(isDesktopSlicer(), reason="the command line runs headless, outside desktop Slicer")

SUBCOMMANDS = ["compare", "demo", "threshold", "level-trace", "grow-from-seeds", "islands", "import-labelmap", "export-labelmap"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_help_documents_every_subcommand(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert "usage: aisegmentation " + command in result.stdout
    assert "--output" in result.stdout or "--json" in result.stdout


def test_compare_label_maps_by_value_with_json_and_csv(tmp_path, sampleFile):
    import json

    import SimpleITK as sitk

    from AISegmentationLib.Comparison import SegmentComparison

    reference, compared = sampleFile("example_seg.nii.gz"), sampleFile("example_seg_fast.nii.gz")
    result = run("compare", reference, compared, "--device", "cpu", "--json", tmp_path / "r.json",
                 "--csv", tmp_path / "r.csv")
    assert result.returncode == 0, result.stderr
    records = json.loads((tmp_path / "r.json").read_text())
    byName = {r["referenceSegment"]: r for r in records}
    image = sitk.ReadImage(reference)
    a = sitk.GetArrayFromImage(image) == 5
    b = sitk.GetArrayFromImage(sitk.ReadImage(compared)) == 5
    expected = SegmentComparison.compareMasks(a, b, image.GetSpacing()[::-1], device="cpu")
    assert byName["Label 5"]["dice"] == pytest.approx(expected.dice)
    assert byName["Label 5"]["hausdorff95"] == pytest.approx(expected.hausdorff95)
    assert len((tmp_path / "r.csv").read_text().splitlines()) == len(records) + 1
    assert "Label 5" in result.stdout


def test_threshold_then_islands_then_export(tmp_path, sampleFile):
    ct = sampleFile("example_ct.nii.gz")
    bone = tmp_path / "bone.seg.nrrd"
    result = run("threshold", ct, "--segment", "bone", "--range", 200, 3071, "--output", bone)
    assert result.returncode == 0, result.stderr
    assert bone.exists() and "bone" in result.stdout
    cleaned = tmp_path / "clean.seg.nrrd"
    result = run("islands", ct, "--segmentation", bone, "--segment", "bone", "--keep-largest", "--output", cleaned,
                 "--labelmap-output", tmp_path / "clean.nii.gz")
    assert result.returncode == 0, result.stderr
    result = run("export-labelmap", cleaned, ct, "--output", tmp_path / "again.nii.gz")
    assert result.returncode == 0, result.stderr
    import SimpleITK as sitk

    first = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "clean.nii.gz")))
    second = sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "again.nii.gz")))
    ctArray = sitk.GetArrayFromImage(sitk.ReadImage(ct))
    assert np.array_equal(first, second)
    assert 0 < first.sum() < ((ctArray >= 200) & (ctArray <= 3071)).sum()


def test_grow_from_seeds_with_markups_files(tmp_path, sampleFile):
    from AISegmentationLib.Demo import Demo

    output = tmp_path / "liver.seg.nrrd"
    result = run("grow-from-seeds", sampleFile("example_ct.nii.gz"), "--seeds", f"liver={Demo.LIVER_SEEDS}",
                 "--seeds", f"other={Demo.OTHER_SEEDS}", "--seed-radius", 6, "--keep-largest-island", "liver",
                 "--output", output)
    assert result.returncode == 0, result.stderr
    assert "liver" in result.stdout and output.exists()


def test_bad_input_gives_a_clear_error_and_no_output(tmp_path, sampleFile):
    output = tmp_path / "x.seg.nrrd"
    result = run("threshold", tmp_path / "missing.nii.gz", "--segment", "s", "--range", 0, 1, "--output", output)
    assert result.returncode == 2
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr
    result = run("grow-from-seeds", sampleFile("example_ct.nii.gz"), "--seeds", "only=nothing.mrk.json",
                 "--output", output)
    assert result.returncode == 2 and "error" in result.stderr
    result = run("level-trace", sampleFile("example_ct.nii.gz"), "--segment", "s", "--seed", 9999, 0, 0,
                 "--output", output)
    assert result.returncode == 2 and "outside volume" in result.stderr
    assert not output.exists()


def test_demo_writes_its_four_outputs_and_reaches_the_liver_dice(tmp_path):
    result = run("demo", "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("demo.seg.nrrd", "demo_labels.nii.gz", "demo_overview.png", "demo_volumes.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    dice = float(result.stdout.split("Liver Dice against TotalSegmentator's liver:")[1].split()[0])
    assert dice >= 0.85
    rows = (tmp_path / "demo_volumes.csv").read_text().splitlines()
    assert rows[0].startswith("segment,") and {r.split(",")[0] for r in rows[1:]} == {"liver", "bone"}
    assert (tmp_path / "demo_overview.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_takes_its_manifest_before_the_backend_and_a_pacs_run_needs_none():
    """A lone positional went to the BACKEND sub-command ("invalid choice: 'cohort.csv'") while the manifest was
    optional: it is required again, and a --dicomweb run written with its options first gets an empty one."""
    from AISegmentationLib.CommandLine.Batch import withManifestPlaceholder
    from AISegmentationLib.CommandLine.Main import buildParser

    parser = buildParser()
    plain = parser.parse_args(withManifestPlaceholder(["batch", "cohort.csv", "--output", "out"]))
    assert (plain.manifest, plain.backend) == ("cohort.csv", None)
    withBackend = parser.parse_args(withManifestPlaceholder(
        ["batch", "cohort.csv", "--output", "out", "nnunet", "--model", "m"]))
    assert (withBackend.manifest, withBackend.backend) == ("cohort.csv", "nnunet")
    pacs = parser.parse_args(withManifestPlaceholder(
        ["batch", "--output", "out", "--dicomweb", "http://127.0.0.1:8042/dicom-web", "--study", "1.2.3"]))
    assert pacs.manifest == "" and pacs.dicomweb.startswith("http://127.0.0.1")
