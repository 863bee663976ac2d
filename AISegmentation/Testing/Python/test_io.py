import json
import os

import numpy as np
import pytest
import slicer

from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, makeVolume, sceneSnapshot, twoBlobs


@pytest.mark.parametrize("extension", [".nrrd", ".nii.gz", ".mha"])
def test_volume_round_trip_keeps_voxels_and_geometry(logic, tmp_path, extension):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image, spacing=(0.7, 1.3, 2.5), origin=(10, -20, 5), directions=OBLIQUE_DIRECTIONS)
    path = logic.saveVolume(volume, tmp_path / f"volume{extension}")
    loaded = logic.loadVolume(path)
    assert np.array_equal(slicer.util.arrayFromVolume(loaded), image)
    assert np.allclose(loaded.GetSpacing(), volume.GetSpacing(), atol=1e-5)
    assert np.allclose(loaded.GetOrigin(), volume.GetOrigin(), atol=1e-4)
    for a, b in zip(_directions(loaded), _directions(volume)):
        assert np.allclose(a, b, atol=1e-5)


def _directions(volume):
    directions = np.zeros((3, 3))
    volume.GetIJKToRASDirections(directions)
    return directions


def test_dicom_series_folder_loads_as_one_volume(logic):
    from AISegmentationLib.SampleData import fetchDicomSeries

    volume = logic.loadVolume(fetchDicomSeries())
    assert volume.GetImageData().GetDimensions() == (512, 512, 20)
    assert np.allclose(volume.GetSpacing(), (0.9765625, 0.9765625, 2.0), atol=1e-4)
    array = slicer.util.arrayFromVolume(volume)
    assert array.min() <= -1000 and array.max() > 1000  # Hounsfield units after rescale


def test_segmentation_round_trip_keeps_names_colors_label_values_and_tags(logic, tmp_path):
    image, blobA, blobB = twoBlobs()
    volume = makeVolume(logic, image, spacing=(0.8, 0.9, 1.7))
    segmentation = logic.createSegmentation(volume, "seg")
    first = logic.addSegment(segmentation, "spleen", (0.1, 0.2, 0.3))
    second = logic.addSegment(segmentation, "kidney_right", (0.9, 0.5, 0.25))
    logic.writeLabelmapArray(segmentation, first, volume, blobA)
    logic.writeLabelmapArray(segmentation, second, volume, blobB)
    segmentation.GetSegmentation().GetSegment(first).SetTag("AISegmentation.backend", "test")
    path = logic.saveSegmentation(segmentation, tmp_path / "round.seg.nrrd")
    loaded = logic.loadSegmentation(path)
    original, copy = segmentation.GetSegmentation(), loaded.GetSegmentation()
    assert copy.GetNumberOfSegments() == 2
    for segmentId in (first, second):
        a, b = original.GetSegment(segmentId), copy.GetSegment(segmentId)
        assert b is not None and b.GetName() == a.GetName()
        assert np.allclose(b.GetColor(), a.GetColor(), atol=1e-3)
        assert b.GetLabelValue() == a.GetLabelValue()
        assert np.array_equal(logic.segmentArray(loaded, segmentId, volume), logic.segmentArray(segmentation, segmentId, volume))
    from AISegmentationLib.Segments import segmentTag

    assert segmentTag(copy.GetSegment(first), "AISegmentation.backend") == "test"
    assert segmentTag(copy.GetSegment(second), "AISegmentation.backend") is None


def test_labelmap_import_with_names_and_export_keeps_values(logic, tmp_path):
    labels = np.zeros((12, 20, 24), np.uint8)
    labels[2:5, 3:8, 4:9] = 1
    labels[6:10, 10:15, 12:20] = 5
    source = makeVolume(logic, labels.astype(np.int16), spacing=(1.5, 1.0, 2.0), origin=(1, 2, 3))
    path = logic.saveVolume(source, tmp_path / "labels.nii.gz")
    segmentation = logic.importLabelmap(path, {1: "spleen", 5: "liver"})
    names = {segmentation.GetSegmentation().GetSegment(i).GetName(): segmentation.GetSegmentation().GetSegment(i)
             for i in segmentation.GetSegmentation().GetSegmentIDs()}
    assert set(names) == {"spleen", "liver"}
    assert names["liver"].GetLabelValue() == 5
    exported, table = logic.exportLabelmap(segmentation, source, tmp_path / "out.nii.gz")
    assert table == {1: "spleen", 5: "liver"}
    reread = logic.loadVolume(exported)
    assert np.array_equal(slicer.util.arrayFromVolume(reread), labels)
    with open(exported + ".labels.json") as file:
        assert json.load(file) == {"1": "spleen", "5": "liver"}
    reloaded = logic.loadSegmentation(logic.saveSegmentation(segmentation, tmp_path / "imported.seg.nrrd"))
    values = {reloaded.GetSegmentation().GetSegment(i).GetName(): reloaded.GetSegmentation().GetSegment(i).GetLabelValue()
              for i in reloaded.GetSegmentation().GetSegmentIDs()}
    assert values == {"spleen": 1, "liver": 5}


def test_label_names_from_text_and_file(tmp_path):
    from AISegmentationLib.SegmentationIO import readLabelNames

    assert readLabelNames("1=spleen,2=kidney_right") == {1: "spleen", 2: "kidney_right"}
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"3": "liver"}))
    assert readLabelNames(str(path)) == {3: "liver"}
    with pytest.raises(ValueError, match="integer label values"):
        readLabelNames({"a": "b"})
    with pytest.raises(ValueError, match="background"):
        readLabelNames({0: "background"})


def test_corrupt_and_missing_files_give_clear_errors_and_leave_the_scene(logic, tmp_path):
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(b"not an image" * 100)
    corruptSegmentation = tmp_path / "corrupt.seg.nrrd"
    corruptSegmentation.write_bytes(b"NRRD0004\nnonsense\n")
    before = sceneSnapshot(logic)
    with pytest.raises(ValueError, match="corrupt"):
        logic.loadVolume(corrupt)
    with pytest.raises(ValueError, match="does not exist"):
        logic.loadVolume(tmp_path / "missing.nrrd")
    with pytest.raises(ValueError, match="corrupt"):
        logic.loadSegmentation(corruptSegmentation)
    with pytest.raises(ValueError, match="corrupt"):
        logic.importLabelmap(corrupt, {1: "x"})
    with pytest.raises(ValueError, match="does not exist"):
        logic.loadMarkupsPoints(str(tmp_path / "missing.mrk.json"))
    assert sceneSnapshot(logic) == before
    assert not os.path.exists(tmp_path / "missing.nrrd")
