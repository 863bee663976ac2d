import numpy as np
import pytest

from DevTools.SyntheticImages import OBLIQUE_DIRECTIONS, makeVolume, rasOfIjk, sceneSnapshot


def _cylinder(shape=(20, 30, 40)):
    kk, jj, ii = np.mgrid[:shape[0], :shape[1], :shape[2]]
    disc = (jj - 15) ** 2 + (ii - 20) ** 2 <= 64
    inside = disc & (kk >= 5) & (kk < 15)
    return np.where(inside, 100, 0).astype(np.int16), inside


@pytest.mark.parametrize("plane, seedIjk, sliceOf", [
    ("IJ", (28, 15, 10), lambda a: a[10]),
    ("IK", (28, 15, 10), lambda a: a[:, 15, :]),
    ("JK", (20, 23, 10), lambda a: a[:, :, 20]),
])
def test_2d_level_tracing_fills_the_traced_outline_on_the_seed_slice(logic, plane, seedIjk, sliceOf):
    image, inside = _cylinder()
    volume = makeVolume(logic, image, spacing=(0.8, 1.1, 2.0), origin=(3, 4, 5), directions=OBLIQUE_DIRECTIONS)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "traced")
    logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, seedIjk), plane)
    result = logic.segmentArray(segmentation, segmentId, volume).astype(bool)
    expectedSlice = sliceOf(inside)
    assert np.array_equal(sliceOf(result), expectedSlice)
    assert result.sum() == expectedSlice.sum()  # nothing outside the seed's slice


def test_3d_level_tracing_fills_the_traced_surface(logic):
    image, inside = _cylinder()
    volume = makeVolume(logic, image, spacing=(1.0, 1.0, 1.5))
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "traced")
    logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, (28, 15, 10)), "3D")
    result = logic.segmentArray(segmentation, segmentId, volume).astype(bool)
    assert np.array_equal(result, inside)


def test_level_tracing_refuses_bad_seeds_without_changing_the_scene(logic):
    image, _ = _cylinder()
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "traced")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="outside volume"):
        logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, (80, 15, 10)), "IJ")
    with pytest.raises(ValueError, match="uniform area"):
        logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, (20, 15, 10)), "IJ")
    with pytest.raises(ValueError, match="uniform area"):
        logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, (20, 15, 10)), "3D")
    with pytest.raises(ValueError, match="Unknown level tracing plane"):
        logic.levelTrace(volume, segmentation, segmentId, rasOfIjk(volume, (28, 15, 10)), "XY")
    assert sceneSnapshot(logic, segmentation) == before
