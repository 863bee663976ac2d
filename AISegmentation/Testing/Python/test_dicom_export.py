"""Any segmentation out as DICOM SEG and RTSTRUCT and back in on its referenced series (Dicom/): a tiny CT series
with real UIDs (DevTools.DicomSeries.syntheticSeries) and the real example CT series with TotalSegmentator's label
map of it. SEG out -> in is voxel-identical; RTSTRUCT out -> in keeps every structure with Dice >= 0.98 (printed per
structure); refusals (off the grid, no UIDs, empty, not DICOM, another series) write nothing; the CLI's
--dicom-seg-output / --rtstruct-output and DICOM inputs of compare."""

import os

import numpy as np
import pydicom
import pytest

from AISegmentationLib.Dicom import RtStruct
from AISegmentationLib.Dicom.DicomSeg import SourceSeries
from AISegmentationLib.SampleData import fetchDicomSeries, fetchSampleFile
from AISegmentationLib.Segments import segmentIdByName
from DevTools.DicomSeries import seriesWithUids, syntheticSeries
from DevTools.SyntheticImages import ball, dice

EXAMPLE_NAMES = {1: "spleen", 2: "kidney_right", 3: "kidney_left", 5: "liver", 6: "stomach"}


def _tinyImage():
    shape = (12, 40, 48)
    image = np.zeros(shape, np.int16)
    outer, inner, small = ball(shape, (6, 20, 18), (4, 9, 9)), ball(shape, (6, 20, 18), (2, 3, 3)), \
        ball(shape, (5, 20, 36), (3, 5, 5))
    image[outer & ~inner] = 100  # a ring: a hole in each slice
    image[small] = 200
    return image


@pytest.fixture(scope="module")
def tinySeries(tmp_path_factory):
    return syntheticSeries(str(tmp_path_factory.mktemp("dicom") / "tiny"), _tinyImage(), seed="test_dicom_export")


def _tinySegmentation(logic, folder):
    volume = logic.loadVolume(folder)
    segmentation = logic.createSegmentation(volume, "tiny")
    image = _tinyImage()
    for name, value in (("ring", 100), ("ball", 200)):
        segmentId = logic.addSegment(segmentation, name, color=(0.9, 0.2, 0.1) if value == 100 else None)
        logic.writeLabelmapArray(segmentation, segmentId, volume, image == value)
    return volume, segmentation


def _masks(logic, segmentation, volume):
    names = [segmentation.GetSegmentation().GetNthSegment(i).GetName()
             for i in range(segmentation.GetSegmentation().GetNumberOfSegments())]
    return {name: logic.segmentArray(segmentation, segmentIdByName(segmentation, name), volume) != 0
            for name in names}


def test_tiny_segmentation_round_trips_through_seg_and_rtstruct_voxel_for_voxel(logic, tinySeries, tmp_path):
    volume, segmentation = _tinySegmentation(logic, tinySeries)
    original = _masks(logic, segmentation, volume)
    segPath = logic.exportDicomSeg(segmentation, tinySeries, tmp_path / "seg.dcm")
    rtPath = logic.exportRtStruct(segmentation, volume, tmp_path / "rt.dcm")  # a volume loaded from the folder
    for path in (segPath, rtPath):
        loaded = logic.loadSegmentation(path, sourceSeries=tinySeries)
        masks = _masks(logic, loaded, volume)
        assert list(masks) == ["ring", "ball"]
        for name in masks:
            assert np.array_equal(masks[name], original[name]), (path, name)
        ring = loaded.GetSegmentation().GetSegment(segmentIdByName(loaded, "ring"))
        assert np.allclose(ring.GetColor(), (0.9, 0.2, 0.1), atol=0.01)
    rt = pydicom.dcmread(rtPath)
    assert rt.Modality == "RTSTRUCT" and [r.ROIName for r in rt.StructureSetROISequence] == ["ring", "ball"]
    source = pydicom.dcmread(os.path.join(tinySeries, "slice0000.dcm"), stop_before_pixels=True)
    referenced = rt.ReferencedFrameOfReferenceSequence[0]
    assert referenced.FrameOfReferenceUID == source.FrameOfReferenceUID
    study = referenced.RTReferencedStudySequence[0]
    assert study.RTReferencedSeriesSequence[0].SeriesInstanceUID == source.SeriesInstanceUID
    assert rt.StudyInstanceUID == source.StudyInstanceUID and rt.PatientID == source.PatientID
    holes = [c for c in rt.ROIContourSequence[0].ContourSequence
             if c.ContourImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID]
    assert not holes  # the first slice holds no ring


def test_example_ct_segments_round_trip_seg_identical_rtstruct_dice(logic, tmp_path):
    import SimpleITK as sitk

    folder = seriesWithUids(fetchDicomSeries(), str(tmp_path / "example_ct_dicom"))
    volume = logic.loadVolume(folder)
    image = sitk.ReadImage(fetchSampleFile("example_seg_dicom.nii.gz"))
    labels = sitk.GetArrayFromImage(image)
    kept = sitk.GetImageFromArray(np.where(np.isin(labels, list(EXAMPLE_NAMES)), labels, 0).astype(np.uint8))
    kept.CopyInformation(image)
    sitk.WriteImage(kept, str(tmp_path / "organs.nii.gz"))
    segmentation = logic.importLabelmap(tmp_path / "organs.nii.gz", EXAMPLE_NAMES, volume)
    original = _masks(logic, segmentation, volume)
    seg = logic.loadSegmentation(logic.exportDicomSeg(segmentation, folder, tmp_path / "seg.dcm"),
                                 sourceSeries=folder)
    rt = logic.loadSegmentation(logic.exportRtStruct(segmentation, folder, tmp_path / "rt.dcm"), sourceSeries=volume)
    segMasks, rtMasks = _masks(logic, seg, volume), _masks(logic, rt, volume)
    assert set(segMasks) == set(rtMasks) == set(original) == {"spleen", "liver", "stomach"}
    figures = {}
    for name, mask in original.items():
        assert np.array_equal(segMasks[name], mask), name
        figures[name] = dice(rtMasks[name], mask)
    print("RTSTRUCT round trip Dice per structure (example CT series):",
          ", ".join(f"{name} {value:.4f}" for name, value in figures.items()))
    assert min(figures.values()) >= 0.98


def test_refusals_write_nothing(logic, tinySeries, tmp_path):
    volume, segmentation = _tinySegmentation(logic, tinySeries)
    output = tmp_path / "seg.dcm"
    # a segmentation off the series' grid (half a voxel away)
    other = logic.importLabelmap(_shiftedLabelmap(logic, volume, segmentation, tmp_path), None)
    with pytest.raises(ValueError, match="not on the grid of the DICOM series"):
        logic.exportDicomSeg(other, tinySeries, output)
    with pytest.raises(ValueError, match="not on the grid of the DICOM series"):
        logic.exportRtStruct(other, tinySeries, output)
    # a series whose study and series UIDs were emptied (the example CT as published)
    with pytest.raises(ValueError, match="no StudyInstanceUID"):
        logic.exportDicomSeg(segmentation, fetchDicomSeries(), output)
    empty = logic.createSegmentation(volume, "empty")
    logic.addSegment(empty, "nothing")
    with pytest.raises(ValueError, match="empty on the series"):
        logic.exportRtStruct(empty, tinySeries, output)
    assert not output.exists() and os.listdir(tmp_path) == ["shifted.nrrd", "shifted.nrrd.labels.json"]
    garbage = tmp_path / "garbage.dcm"
    garbage.write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))
    with pytest.raises(ValueError):
        logic.loadSegmentation(garbage, sourceSeries=tinySeries)
    segPath = logic.exportDicomSeg(segmentation, tinySeries, tmp_path / "good.dcm")
    with pytest.raises(ValueError, match="needs its referenced DICOM series"):
        logic.loadSegmentation(segPath)
    nodes = logic.scene.GetNumberOfNodes()
    otherSeries = syntheticSeries(str(tmp_path / "other"), _tinyImage(), seed="another series")
    for path in (segPath, logic.exportRtStruct(segmentation, tinySeries, tmp_path / "rt.dcm")):
        with pytest.raises(ValueError, match="reference"):
            logic.loadSegmentation(path, sourceSeries=otherSeries)
    assert logic.scene.GetNumberOfNodes() == nodes


def _shiftedLabelmap(logic, volume, segmentation, tmp_path):
    path, _ = logic.exportLabelmap(segmentation, volume, str(tmp_path / "shifted.nrrd"))
    import SimpleITK as sitk

    image = sitk.ReadImage(path)
    image.SetOrigin([o + 0.5 for o in image.GetOrigin()])
    sitk.WriteImage(image, path)
    return path


def test_rtstruct_contours_are_checked_before_filling(tinySeries, tmp_path):
    series = SourceSeries(tinySeries)
    mask = _tinyImage() == 200
    path = RtStruct.writeRtStructMasks([({"name": "ball", "type": ("SCT", "78961009", "Spleen")}, mask)], series,
                                       str(tmp_path / "rt.dcm"))
    (entry, filled), = RtStruct.readRtStruct(path, series)
    assert entry["type"] == ("SCT", "78961009", "Spleen") and np.array_equal(filled, mask)
    dataset = pydicom.dcmread(path)
    contour = dataset.ROIContourSequence[0].ContourSequence[0]
    contour.NumberOfContourPoints = contour.NumberOfContourPoints + 1
    dataset.save_as(tmp_path / "bad.dcm")
    with pytest.raises(ValueError, match="malformed contour data"):
        RtStruct.readRtStruct(tmp_path / "bad.dcm", series)
    contour.NumberOfContourPoints = contour.NumberOfContourPoints - 1
    data = [float(v) for v in contour.ContourData]
    data[2] += 0.7  # one point off the slice's plane (slices 2 mm apart)
    contour.ContourData = [f"{v:.4f}" for v in data]
    dataset.save_as(tmp_path / "tilted.dcm")
    with pytest.raises(ValueError, match="does not lie in a slice"):
        RtStruct.readRtStruct(tmp_path / "tilted.dcm", series)


def test_cli_writes_dicom_outputs_and_compares_a_dicom_reference(tinySeries, tmp_path):
    import json

    from CommandLineProcess import runCli as run

    result = run("threshold", tinySeries, "--segment", "bright", "--range", "50", "300", "--output",
                 tmp_path / "t.seg.nrrd", "--dicom-seg-output", tmp_path / "t_seg.dcm", "--rtstruct-output",
                 tmp_path / "t_rt.dcm")
    assert result.returncode == 0, result.stderr
    assert "DICOM SEG:" in result.stdout and "RTSTRUCT:" in result.stdout
    result = run("compare", tmp_path / "t_rt.dcm", tmp_path / "t_seg.dcm", "--series", tinySeries, "--device", "cpu",
                 "--json", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    row, = json.loads((tmp_path / "r.json").read_text())
    assert row["referenceSegment"] == row["comparedSegment"] == "bright" and row["dice"] == 1.0


def test_cohort_case_takes_clinical_contours_as_its_reference(logic, tinySeries, tmp_path):
    """The manifest's reference column: an RTSTRUCT (or a DICOM SEG) of the case's DICOM series; a DICOM SEG as the
    prediction too."""
    from AISegmentationLib.Cohort import CohortRunner
    from AISegmentationLib.Manifest import readManifest

    volume, segmentation = _tinySegmentation(logic, tinySeries)
    rtPath = logic.exportRtStruct(segmentation, tinySeries, tmp_path / "contours.dcm")
    segPath = logic.exportDicomSeg(segmentation, tinySeries, tmp_path / "seg.dcm")
    prediction, _ = logic.exportLabelmap(segmentation, volume, str(tmp_path / "prediction.nii.gz"))
    manifest = tmp_path / "cohort.csv"
    manifest.write_text(f"case,image,reference,prediction\nrt,{tinySeries},{rtPath},{prediction}\n"
                        f"seg,{tinySeries},{segPath},{prediction}\n"
                        f"seg_prediction,{tinySeries},{rtPath},{segPath}\n")
    records = CohortRunner.runCasesInProcess(readManifest(manifest), str(tmp_path / "out"), ("compare",),
                                             logic=logic)
    for record in records:
        assert record["status"] == "done", record["error"]
        assert {(m["referenceSegment"], m["comparedSegment"], m["dice"]) for m in record["metrics"]} == \
            {("ring", "ring", 1.0), ("ball", "ball", 1.0)}
