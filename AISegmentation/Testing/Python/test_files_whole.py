"""Nothing lost, nothing invented at the file boundary: damaged files are refused, uneven DICOM series are refused
or resampled knowingly, every label value is imported, outputs appear complete or not at all, and file errors are
one clear line."""

import json
import os
import shutil

import numpy as np
import pytest
import slicer

from AISegmentationLib.Runtime import isDesktopSlicer
from CommandLineProcess import runCli
from DevTools.SyntheticImages import makeVolume, sceneSnapshot, twoBlobs

headlessOnly = pytest.mark.skipif(isDesktopSlicer(), reason="the command line runs headless, outside desktop Slicer")


def _truncate(path, fraction=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as file:
        file.write(data[: int(len(data) * fraction)])


# Damaged files ---------------------------------------------------------------------------------------------------

def test_truncated_nifti_gz_is_refused_and_the_scene_is_unchanged(logic, tmp_path, sampleFile):
    path = tmp_path / "ct_cut.nii.gz"
    shutil.copyfile(sampleFile("example_ct_sm.nii.gz"), path)
    _truncate(path)
    before = sceneSnapshot(logic)
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        logic.loadVolume(path)
    labels = tmp_path / "seg_cut.nii.gz"
    shutil.copyfile(sampleFile("example_seg.nii.gz"), labels)
    _truncate(labels, 0.8)
    with pytest.raises(ValueError, match="seg_cut.nii.gz' is incomplete"):
        logic.importLabelmap(labels)
    assert sceneSnapshot(logic) == before


@pytest.mark.parametrize("extension", [".nii", ".nrrd", ".mha", ".seg.nrrd"])
def test_truncated_files_of_every_format_are_refused(logic, tmp_path, extension):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    if extension == ".seg.nrrd":
        segmentation = logic.createSegmentation(volume)
        segmentId = logic.addSegment(segmentation, "blob")
        logic.threshold(volume, segmentation, segmentId, 50, 1000)
        path = logic.saveSegmentation(segmentation, tmp_path / f"whole{extension}")
    else:
        path = logic.saveVolume(volume, tmp_path / f"whole{extension}")
    assert logic.loadSegmentation(path) if extension == ".seg.nrrd" else logic.loadVolume(path)
    _truncate(path, 0.7)
    before = sceneSnapshot(logic)
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        logic.loadSegmentation(path) if extension == ".seg.nrrd" else logic.loadVolume(path)
    assert sceneSnapshot(logic) == before


def test_header_image_pairs_are_checked_through_either_file(logic, tmp_path):
    import SimpleITK as sitk

    image, _, _ = twoBlobs(shape=(6, 7, 8))
    header = str(tmp_path / "pair.hdr")
    sitk.WriteImage(sitk.GetImageFromArray(image.astype(np.int16)), header)  # NIfTI-1 "ni1": .hdr + .img
    assert logic.loadVolume(header).GetImageData().GetDimensions() == (8, 7, 6)
    _truncate(tmp_path / "pair.img", 0.6)
    before = sceneSnapshot(logic)
    for given in (header, str(tmp_path / "pair.img")):
        with pytest.raises(ValueError, match=r"incomplete or corrupt \(the header announces 336 voxels \(672 bytes "
                                             r"in 'pair.img'\), that file holds 403 bytes\)"):
            logic.loadVolume(given)
    os.remove(tmp_path / "pair.img")
    with pytest.raises(ValueError, match=r"its image data 'pair.img' is missing"):
        logic.loadVolume(header)
    assert sceneSnapshot(logic) == before


@pytest.mark.parametrize("encoding", ["ascii", "hex"])
def test_text_encoded_nrrd_must_hold_every_value(logic, tmp_path, encoding):
    numbers = np.arange(24, dtype=np.int16)
    body = " ".join(map(str, numbers)) if encoding == "ascii" else numbers.astype("<i2").tobytes().hex()
    header = ("NRRD0004\ntype: short\ndimension: 3\nsizes: 4 3 2\nspace: left-posterior-superior\n"
              "space directions: (1,0,0) (0,1,0) (0,0,1)\nendian: little\n"
              f"encoding: {encoding}\n\n")
    (tmp_path / "whole.nrrd").write_text(header + body + "\n")
    if encoding == "ascii":  # ITK's NRRD reader reads ascii (not hex): the whole file loads with every value
        volume = logic.loadVolume(tmp_path / "whole.nrrd")
        assert slicer.util.arrayFromVolume(volume).ravel().tolist() == numbers.tolist()
    (tmp_path / "cut.nrrd").write_text(header + body[: len(body) // 2])
    before = sceneSnapshot(logic)
    unit = "24 values" if encoding == "ascii" else "48 bytes"
    with pytest.raises(ValueError, match=f"cut.nrrd' is incomplete or corrupt \\(the header announces {unit}, "
                                         f"the {encoding} data holds"):
        logic.loadVolume(tmp_path / "cut.nrrd")
    assert sceneSnapshot(logic) == before


@headlessOnly
def test_cli_refuses_a_truncated_volume_with_one_line(tmp_path, sampleFile):
    path = tmp_path / "ct_cut.nii.gz"
    shutil.copyfile(sampleFile("example_ct_sm.nii.gz"), path)
    _truncate(path)
    result = runCli("threshold", path, "--segment", "bone", "--range", 200, 3000, "--output", tmp_path / "b.seg.nrrd")
    assert result.returncode == 2 and "incomplete or corrupt" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "b.seg.nrrd").exists()


# DICOM series ----------------------------------------------------------------------------------------------------

@pytest.fixture
def seriesWithGap(tmp_path):
    from AISegmentationLib.SampleData import fetchDicomSeries

    complete = fetchDicomSeries()
    folder = tmp_path / "series"
    shutil.copytree(complete, folder)
    names = sorted(os.listdir(folder))
    removed = names[len(names) // 2]
    os.remove(folder / removed)
    return complete, folder, removed


def test_dicom_series_with_a_missing_slice_is_refused_naming_the_slices(logic, seriesWithGap):
    _, folder, _ = seriesWithGap
    before = sceneSnapshot(logic)
    with pytest.raises(ValueError, match="not evenly spaced") as error:
        logic.loadVolume(folder)
    message = str(error.value)
    assert "4.000 mm between" in message and "spacing 2.000 mm" in message and "acceptIrregularSpacing" in message
    assert message.count("'CT.") == 2  # the two slices around the gap
    assert sceneSnapshot(logic) == before


def test_dicom_series_with_a_missing_slice_resampled_when_accepted(logic, seriesWithGap):
    complete, folder, _ = seriesWithGap
    whole = slicer.util.arrayFromVolume(logic.loadVolume(complete)).astype(int)
    volume = logic.loadVolume(folder, acceptIrregularSpacing=True)
    assert volume.GetImageData().GetDimensions() == (512, 512, 20)
    assert np.allclose(volume.GetSpacing(), (0.9765625, 0.9765625, 2.0), atol=1e-4)
    provenance = volume.GetAttribute("AISegmentation.irregularSpacing")
    assert provenance and "resampled onto 20 slices" in provenance and "4.000 mm" in provenance
    assert len(volume.GetAttribute("AISegmentation.acquiredSlicePositionsMm").split(",")) == 19
    resampled = slicer.util.arrayFromVolume(volume).astype(int)
    identical = [k for k in range(20) if np.array_equal(resampled[k], whole[k])]
    assert len(identical) == 19  # every acquired slice where it belongs; the missing one interpolated
    missing = (set(range(20)) - set(identical)).pop()
    expected = np.rint((whole[missing - 1] + whole[missing + 1]) / 2)
    assert np.abs(resampled[missing] - expected).max() <= 1


def test_dicom_folder_with_a_repeated_slice_is_refused(logic, tmp_path):
    from AISegmentationLib.SampleData import fetchDicomSeries

    folder = tmp_path / "series"
    shutil.copytree(fetchDicomSeries(), folder)
    first = sorted(os.listdir(folder))[0]
    shutil.copyfile(folder / first, folder / ("copy_" + first))
    with pytest.raises(ValueError, match="same position"):
        logic.loadVolume(folder, acceptIrregularSpacing=True)


@headlessOnly
def test_cli_dicom_gap_refused_then_accepted_with_the_flag(tmp_path, seriesWithGap):
    _, folder, _ = seriesWithGap
    output = tmp_path / "bone.seg.nrrd"
    arguments = ["threshold", folder, "--segment", "bone", "--range", 300, 3000, "--output", output]
    refused = runCli(*arguments)
    assert refused.returncode == 2 and "not evenly spaced" in refused.stderr and "--accept-irregular-spacing" in \
        refused.stderr and "Traceback" not in refused.stderr
    accepted = runCli(*arguments, "--accept-irregular-spacing")
    assert accepted.returncode == 0, accepted.stderr
    assert output.exists() and "resampled onto 20 slices" in accepted.stderr


# Label values ----------------------------------------------------------------------------------------------------

def _segmentsByName(logic, segmentation, volume):
    result = {}
    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        result[segment.GetName()] = (segment, int(logic.segmentArray(segmentation, segmentId, volume).sum()))
    return result


def test_negative_and_large_label_values_import_every_voxel_and_export_back(logic, tmp_path):
    labels = np.zeros((10, 12, 14), np.int32)
    labels[1:3, 1:4, 1:5] = -3          # 24 voxels
    labels[4:6, 5:8, 2:4] = 2           # 12 voxels
    labels[7:9, 8:11, 9:13] = 70000     # 24 voxels
    source = makeVolume(logic, labels)
    path = logic.saveVolume(source, tmp_path / "labels.nrrd")
    segmentation = logic.importLabelmap(path, {-3: "lesion", 2: "kidney"})
    segments = _segmentsByName(logic, segmentation, source)
    assert {name: count for name, (_, count) in segments.items()} == {"lesion": 24, "kidney": 12, "Label 70000": 24}
    assert segments["kidney"][0].GetLabelValue() == 2
    for name, value in (("lesion", -3), ("Label 70000", 70000)):
        assert 0 < segments[name][0].GetLabelValue() <= 65535
        tag = _reference()
        assert segments[name][0].GetTag("AISegmentation.sourceLabelValue", tag) and str(tag) == str(value)
    saved = logic.saveSegmentation(segmentation, tmp_path / "imported.seg.nrrd")
    reloaded = logic.loadSegmentation(saved)
    exported, table = logic.exportLabelmap(reloaded, source, tmp_path / "out.nii.gz")
    assert table == {-3: "lesion", 2: "kidney", 70000: "Label 70000"}
    assert np.array_equal(slicer.util.arrayFromVolume(logic.loadVolume(exported)), labels)
    with open(exported + ".labels.json", encoding="utf-8") as file:
        assert json.load(file) == {"-3": "lesion", "2": "kidney", "70000": "Label 70000"}


def _reference():
    import vtk

    return vtk.reference("")


@headlessOnly
def test_cli_imports_int64_label_values_beyond_32_bits(tmp_path):
    """Slicer's own import crashes the process on such values (it allocates a histogram up to the largest)."""
    import SimpleITK as sitk

    labels = np.zeros((6, 7, 8), np.int64)
    labels[1:3, 1:3, 1:3] = 2**40
    labels[4:6, 4:6, 4:7] = 4
    path = tmp_path / "big.nrrd"
    sitk.WriteImage(sitk.GetImageFromArray(labels), str(path))
    result = runCli("import-labelmap", path, "--output", tmp_path / "big.seg.nrrd")
    assert result.returncode == 0, result.stderr
    assert f"Label {2**40}" in result.stdout and "Label 4" in result.stdout


# Outputs ---------------------------------------------------------------------------------------------------------

def test_atomic_output_keeps_the_old_file_on_failure_and_interruption(tmp_path):
    from AISegmentationLib.AtomicWrite import atomicOpen, atomicOutput, isTemporaryName

    target = tmp_path / "case.seg.nrrd"
    target.write_bytes(b"old")
    for interruption in (RuntimeError("writer failed"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with atomicOutput(target) as temporary:
                assert os.path.dirname(temporary) == str(tmp_path) and temporary.endswith(".seg.nrrd")
                assert isTemporaryName(temporary) and not os.path.exists(temporary)
                open(temporary, "wb").write(b"partial")
                raise interruption
        assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["case.seg.nrrd"]
    with atomicOpen(tmp_path / "table.csv", "w", encoding="utf-8") as file:
        file.write("a,b\n")
    assert (tmp_path / "table.csv").read_text() == "a,b\n"


@pytest.mark.parametrize("extension", [".nhdr", ".mhd"])
def test_header_and_data_formats_are_written_whole(logic, tmp_path, extension):
    image, _, _ = twoBlobs()
    path = logic.saveVolume(makeVolume(logic, image), tmp_path / f"volume{extension}")
    assert np.array_equal(slicer.util.arrayFromVolume(logic.loadVolume(path)), image)
    assert not [name for name in os.listdir(tmp_path) if ".tmp-" in name]


def test_writers_leave_no_temporary_files_and_unwritable_folders_are_clear_errors(logic, tmp_path):
    from AISegmentationLib.Comparison import SegmentComparisonMRML
    from AISegmentationLib.Pictures import Overview
    from AISegmentationLib.Demo.Demo import writeTable

    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume)
    logic.threshold(volume, segmentation, logic.addSegment(segmentation, "blob"), 50, 1000)
    logic.saveSegmentation(segmentation, tmp_path / "a.seg.nrrd")
    logic.exportLabelmap(segmentation, volume, tmp_path / "a.nii.gz")
    Overview.segmentationOverview(logic, volume, segmentation, tmp_path / "a.png")
    writeTable(logic.segmentStatistics(segmentation, volume), tmp_path / "a.csv")
    rows, _ = logic.compareSegmentations(segmentation, segmentation, device="cpu")
    SegmentComparisonMRML.rowsToCsv(rows, tmp_path / "b.csv")
    assert sorted(os.listdir(tmp_path)) == ["a.csv", "a.nii.gz", "a.nii.gz.labels.json", "a.png", "a.seg.nrrd",
                                            "b.csv"]
    blocker = tmp_path / "a.csv"
    for write in (lambda path: logic.saveSegmentation(segmentation, path),
                  lambda path: logic.exportLabelmap(segmentation, volume, path),
                  lambda path: Overview.segmentationOverview(logic, volume, segmentation, path),
                  lambda path: SegmentComparisonMRML.rowsToCsv(rows, path)):
        with pytest.raises(ValueError, match="Cannot create the output folder"):
            write(str(blocker / "sub" / "out.seg.nrrd"))


@headlessOnly
def test_cli_unwritable_output_folder_is_one_line_before_any_work(tmp_path, sampleFile):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    result = runCli("threshold", sampleFile("example_ct_sm.nii.gz"), "--segment", "bone", "--range", 200, 3000,
                    "--output", blocker / "out" / "bone.seg.nrrd")
    assert result.returncode == 2 and "Cannot create the output folder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    demo = runCli("demo", "--output", blocker / "demo")
    assert demo.returncode == 2 and "Cannot create the output folder" in demo.stderr


@pytest.mark.skipif(os.name == "nt" or (hasattr(os, "geteuid") and os.geteuid() == 0),
                    reason="folder permissions do not stop root")
def test_read_only_output_folder_is_a_clear_error(logic, tmp_path):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    folder = tmp_path / "readonly"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="permission denied"):
            logic.saveVolume(volume, folder / "v.nrrd")
    finally:
        folder.chmod(0o755)


# Label name tables -----------------------------------------------------------------------------------------------

def test_invalid_label_names_json_names_the_file(tmp_path):
    from AISegmentationLib.SegmentationIO import readLabelNames

    broken = tmp_path / "names.json"
    broken.write_text('{"1": "spleen",')
    with pytest.raises(ValueError, match="names.json' is not valid JSON"):
        readLabelNames(str(broken))
    listed = tmp_path / "list.json"
    listed.write_text('["spleen"]')
    with pytest.raises(ValueError, match="list.json' must hold a JSON object"):
        readLabelNames(str(listed))
    with pytest.raises(ValueError, match="missing.json' does not exist"):
        readLabelNames(str(tmp_path / "missing.json"))


@headlessOnly
def test_cli_invalid_label_names_json_names_the_file(tmp_path, sampleFile):
    broken = tmp_path / "names.json"
    broken.write_text("{not json")
    result = runCli("import-labelmap", sampleFile("example_seg.nii.gz"), "--labels", broken,
                    "--output", tmp_path / "x.seg.nrrd")
    assert result.returncode == 2 and str(broken) in result.stderr and "Traceback" not in result.stderr


@headlessOnly
def test_cli_errors_are_one_line_and_the_traceback_goes_to_the_log_with_v(tmp_path):
    """No traceback without -v; with -v the log has it (here: an empty folder given as a label map)."""
    result = runCli("import-labelmap", tmp_path, "--output", tmp_path / "x.seg.nrrd")
    assert result.returncode in (1, 2) and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    verbose = runCli("-v", "import-labelmap", tmp_path, "--output", tmp_path / "x.seg.nrrd")
    assert verbose.returncode == result.returncode and "Traceback" in verbose.stderr
