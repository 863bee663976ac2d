import numpy as np
import pytest
import slicer

from AISegmentationLib.Classic.Threshold import Threshold
from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, makeVolume, sceneSnapshot, twoBlobs


def test_manual_threshold_counts_exactly_on_anisotropic_oblique_volume(logic):
    image, blobA, blobB = twoBlobs()
    volume = makeVolume(logic, image, spacing=(0.7, 1.3, 2.5), origin=(10, -20, 5), directions=OBLIQUE_DIRECTIONS)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "bright")
    logic.threshold(volume, segmentation, segmentId, 150, 1000)
    result = logic.segmentArray(segmentation, segmentId, volume)
    expected = (image >= 150) & (image <= 1000)
    assert result.shape == image.shape
    assert int(result.sum()) == int(expected.sum())
    assert np.array_equal(result.astype(bool), expected)


@pytest.mark.parametrize("method", list(Threshold.AUTO_THRESHOLD_METHODS))
def test_every_auto_method_gives_a_threshold_inside_the_intensity_range(logic, method):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    low, high = logic.autoThresholdRange(volume, method, "SET_LOWER_MAX")
    assert image.min() <= low <= image.max()
    assert high == pytest.approx(image.max())


def test_auto_modes_follow_the_threshold_effect(logic):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    threshold = Threshold.computeAutoThreshold(volume.GetImageData(), "Otsu")
    current = (-5.0, 50.0)
    assert logic.autoThresholdRange(volume, "Otsu", "SET_UPPER", current) == (current[0], threshold)
    assert logic.autoThresholdRange(volume, "Otsu", "SET_LOWER", current) == (threshold, current[1])
    assert logic.autoThresholdRange(volume, "Otsu", "SET_MIN_UPPER") == (image.min(), threshold)
    assert logic.autoThresholdRange(volume, "Otsu", "SET_LOWER_MAX") == (threshold, image.max())


def test_otsu_separates_background_from_blobs(logic):
    image, blobA, blobB = twoBlobs(noise=2.0)
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "blobs")
    low, high = logic.autoThreshold(volume, segmentation, segmentId, "Otsu", "SET_LOWER_MAX")
    result = logic.segmentArray(segmentation, segmentId, volume).astype(bool)
    assert np.array_equal(result, (image >= low) & (image <= high))
    assert result[blobB].all() and not result[~(blobA | blobB)].any()


def test_bone_threshold_on_real_ct_matches_numpy(logic, sampleFile):
    ct = logic.loadVolume(sampleFile("example_ct.nii.gz"))
    segmentation = logic.createSegmentation(ct, "seg")
    bone = logic.addSegment(segmentation, "bone")
    logic.threshold(ct, segmentation, bone, 200, 3071)
    array = slicer.util.arrayFromVolume(ct)
    expected = int(((array >= 200) & (array <= 3071)).sum())
    assert expected > 10000
    assert int(logic.segmentArray(segmentation, bone, ct).sum()) == expected


def test_bad_threshold_input_raises_and_changes_nothing(logic):
    image, _, _ = twoBlobs()
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "s")
    logic.threshold(volume, segmentation, segmentId, 150, 1000)
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="above maximum"):
        logic.threshold(volume, segmentation, segmentId, 10, 5)
    with pytest.raises(ValueError, match="No source volume"):
        logic.threshold(None, segmentation, segmentId, 0, 5)
    with pytest.raises(ValueError, match="Unknown threshold method"):
        logic.autoThreshold(volume, segmentation, segmentId, "Magic")
    with pytest.raises(ValueError, match="no segment"):
        logic.threshold(volume, segmentation, "missing", 0, 5)
    assert sceneSnapshot(logic, segmentation) == before
