import numpy as np
import pytest

from DevTools.SyntheticImages import makeVolume, sceneSnapshot


def _twoSegments(logic):
    image = np.zeros((10, 20, 30), np.int16)
    image[:, :, 15:] = 100
    volume = makeVolume(logic, image, spacing=(1.0, 2.0, 0.5))
    segmentation = logic.createSegmentation(volume, "seg")
    left, right, target = (logic.addSegment(segmentation, n) for n in ("left", "right", "target"))
    leftMask = np.zeros(image.shape, np.uint8)
    leftMask[:, :, :10] = 1
    rightMask = np.zeros(image.shape, np.uint8)
    rightMask[:, :, 20:] = 1
    logic.writeLabelmapArray(segmentation, left, volume, leftMask)
    logic.writeLabelmapArray(segmentation, right, volume, rightMask)
    return volume, segmentation, left, right, target, image


def _array(logic, segmentation, segmentId, volume):
    return logic.segmentArray(segmentation, segmentId, volume).astype(bool)


def test_write_inside_one_segment_leaves_the_rest(logic):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    logic.setMasking(maskMode="insideSingleSegment", maskSegmentId=left)
    logic.threshold(volume, segmentation, target, -1000, 1000)  # everything, but only inside "left"
    result = _array(logic, segmentation, target, volume)
    assert result[:, :, :10].all() and not result[:, :, 10:].any()


def test_outside_all_segments_protects_existing_segments(logic):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    logic.setMasking(maskMode="outsideAllSegments")
    logic.threshold(volume, segmentation, target, -1000, 1000)
    result = _array(logic, segmentation, target, volume)
    assert result[:, :, 10:20].all() and not result[:, :, :10].any() and not result[:, :, 20:].any()
    assert _array(logic, segmentation, left, volume)[:, :, :10].all()
    assert _array(logic, segmentation, right, volume)[:, :, 20:].all()


@pytest.mark.parametrize("overwriteMode, rightKept", [("allSegments", False), ("none", True)])
def test_overwrite_mode(logic, overwriteMode, rightKept):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    logic.setMasking(overwriteMode=overwriteMode)
    logic.threshold(volume, segmentation, target, 50, 1000)  # x >= 15, overlaps "right"
    rightAfter = _array(logic, segmentation, right, volume)
    assert rightAfter[:, :, 20:].all() == rightKept
    assert _array(logic, segmentation, target, volume)[:, :, 15:].all()


def test_intensity_range_limits_the_editable_area(logic):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    logic.setMasking(intensityRange=(50, 150))
    logic.threshold(volume, segmentation, target, -1000, 1000)
    assert np.array_equal(_array(logic, segmentation, target, volume), image >= 50)
    assert logic.masking()["intensityRange"] == (50.0, 150.0)


def test_undo_restores_each_previous_state(logic):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    states = [sceneSnapshot(logic, segmentation)]
    logic.threshold(volume, segmentation, target, 50, 1000)
    states.append(sceneSnapshot(logic, segmentation))
    logic.threshold(volume, segmentation, left, 50, 1000)
    assert logic.canUndo(segmentation)
    logic.undo(segmentation)
    assert sceneSnapshot(logic, segmentation) == states[1]
    logic.undo(segmentation)
    assert sceneSnapshot(logic, segmentation) == states[0]


def test_bad_masking_settings_are_refused(logic):
    before = logic.masking()
    with pytest.raises(ValueError, match="Unknown mask mode"):
        logic.setMasking(maskMode="somewhere")
    with pytest.raises(ValueError, match="needs maskSegmentId"):
        logic.setMasking(maskMode="insideSingleSegment")
    with pytest.raises(ValueError, match="minimum above maximum"):
        logic.setMasking(intensityRange=(5, 1))
    assert logic.masking() == before


def test_segmentation_with_other_geometry_is_refused(logic):
    volume, segmentation, left, right, target, image = _twoSegments(logic)
    other = makeVolume(logic, np.zeros((5, 5, 5), np.int16), spacing=(3, 3, 3), name="other")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="different geometry"):
        logic.threshold(other, segmentation, target, 0, 10)
    assert sceneSnapshot(logic, segmentation) == before
