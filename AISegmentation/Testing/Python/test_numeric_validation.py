"""Non-finite and out-of-domain numbers at the Logic boundary, and volumes with NaN/Inf voxels.

Every numeric option of the classic tools and the comparison is a finite number in its domain, or a ValueError
names the option and the value, and the scene (nodes, segments, masking) is left as it was. NaN/Inf voxels are
ignored by threshold (automatic methods on the finite voxels only) and refused by level tracing and grow from seeds.
"""

import numpy as np
import pytest

from AISegmentationLib.Classic.Threshold import Threshold
from AISegmentationLib.Validation import requireInteger, requireNumber, requirePoints, requireRange
from DevTools.SyntheticImages import makeVolume, rasOfIjk, sceneSnapshot, twoBlobs

NAN, INF = float("nan"), float("inf")


def _setUp(logic):
    image, _, _ = twoBlobs(noise=2.0)
    volume = makeVolume(logic, image)
    segmentation = logic.createSegmentation(volume, "seg")
    ids = [logic.addSegment(segmentation, name) for name in ("A", "B", "background")]
    logic.threshold(volume, segmentation, ids[0], 150, 1000)
    seeds = np.zeros(image.shape, np.uint8)
    seeds[14:17, 19:22, 13:16] = 1
    logic.writeLabelmapArray(segmentation, ids[1], volume, seeds)
    border = np.zeros(image.shape, np.uint8)
    border[2:-2, 2:-2, 2:-2] = 1
    border[3:-3, 3:-3, 3:-3] = 0
    logic.writeLabelmapArray(segmentation, ids[2], volume, border)
    return volume, segmentation, ids


def _center(volume):
    return rasOfIjk(volume, (25, 20, 15))


# (option named in the message, call(logic, volume, segmentation, ids, value), bad values)
CASES = {
    "threshold minimum": ("minimum", lambda lg, v, s, ids, x: lg.threshold(v, s, ids[0], x, 1000),
                          [NAN, INF, -INF, 2000.0]),
    "threshold maximum": ("maximum", lambda lg, v, s, ids, x: lg.threshold(v, s, ids[0], 0, x),
                          [NAN, INF, -INF, -100.0]),
    "auto threshold currentRange low": (
        "currentRange", lambda lg, v, s, ids, x: lg.autoThreshold(v, s, ids[0], "Otsu", "SET_UPPER", (x, 100.0)),
        [NAN, INF, -INF, 500.0]),
    "auto threshold range currentRange high": (
        "currentRange", lambda lg, v, s, ids, x: lg.autoThresholdRange(v, "Otsu", "SET_LOWER", (0.0, x)),
        [NAN, INF, -INF, -1.0]),
    "level tracing seed": ("seedRas", lambda lg, v, s, ids, x: lg.levelTrace(v, s, ids[0], (x, 0.0, 0.0)),
                           [NAN, INF, -INF]),
    "seed radius": ("radiusMm", lambda lg, v, s, ids, x: lg.paintSeeds(v, s, ids[1], [_center(v)], x),
                    [NAN, INF, -INF, 0.0, -2.0]),
    "seed points": ("rasPoints",
                    lambda lg, v, s, ids, x: lg.paintSeeds(v, s, ids[1], [_center(v), (x, 1.0, 2.0)], 2.0),
                    [NAN, INF, -INF]),
    "seed locality": ("seedLocalityFactor",
                      lambda lg, v, s, ids, x: lg.growFromSeeds(v, s, ids[1:], seedLocalityFactor=x).apply(),
                      [NAN, INF, -INF, -0.5]),
    "island size": ("minimumSize", lambda lg, v, s, ids, x: lg.removeSmallIslands(v, s, ids[0], x),
                    [NAN, INF, -INF, 0, -3, 2.5]),
    "masking intensity range low": ("intensityRange", lambda lg, v, s, ids, x: lg.setMasking(intensityRange=(x, 100)),
                                    [NAN, INF, -INF, 200.0]),
    "masking intensity range high": ("intensityRange", lambda lg, v, s, ids, x: lg.setMasking(intensityRange=(0, x)),
                                     [NAN, INF, -INF, -1.0]),
    "written mask": ("mask", lambda lg, v, s, ids, x: lg.writeLabelmapArray(
        s, ids[0], v, np.full(slicerShape(v), x, dtype=float)), [NAN, INF, -INF]),
    "segment comparison tolerance": (
        "surfaceDiceTolerance",
        lambda lg, v, s, ids, x: lg.compareSegments(s, ids[0], s, ids[0], device="cpu", surfaceDiceTolerance=x),
        [NAN, INF, -INF, -1.0]),
    "segmentation comparison tolerance": (
        "surfaceDiceTolerance",
        lambda lg, v, s, ids, x: lg.compareSegmentations(s, s, device="cpu", surfaceDiceTolerance=x),
        [NAN, INF, -INF, -1.0]),
}


def slicerShape(volume):
    return volume.GetImageData().GetDimensions()[::-1]


@pytest.mark.parametrize("case, value", [(case, value) for case, (_, _, values) in CASES.items() for value in values])
def test_bad_number_is_a_value_error_naming_option_and_value_and_changes_nothing(logic, case, value):
    option, call, _ = CASES[case]
    volume, segmentation, ids = _setUp(logic)
    before, maskingBefore = sceneSnapshot(logic, segmentation), logic.masking()
    with pytest.raises(ValueError) as error:
        call(logic, volume, segmentation, ids, value)
    message = str(error.value)
    assert option in message
    assert repr(value) in message or (case in ("written mask",) and "NaN or infinite" in message)
    assert sceneSnapshot(logic, segmentation) == before
    assert logic.masking() == maskingBefore


@pytest.mark.parametrize("value", [NAN, INF, -INF, -1.0])
def test_grow_from_seeds_session_refuses_a_bad_locality_factor(logic, value):
    volume, segmentation, ids = _setUp(logic)
    session = logic.growFromSeeds(volume, segmentation, ids[1:], seedLocalityFactor=0.5)
    with pytest.raises(ValueError, match="seedLocalityFactor") as error:
        session.seedLocalityFactor = value
    assert repr(value) in str(error.value)
    assert session.seedLocalityFactor == 0.5
    session.seedLocalityFactor = 2
    session.update()
    assert session.previewArray(ids[1]).any()


def test_huge_seed_radius_paints_the_whole_volume(logic):
    volume, segmentation, ids = _setUp(logic)
    logic.paintSeeds(volume, segmentation, ids[1], [_center(volume)], 1e300)
    assert logic.segmentArray(segmentation, ids[1], volume).all()


# Volumes with NaN / Inf voxels -------------------------------------------------------------------------------------

def _hostileAndFinite(logic):
    """A float volume whose last two slices hold NaN, +Inf and -Inf voxels, and a volume of its finite part only."""
    image, _, _ = twoBlobs(noise=3.0)
    finite = image.astype(np.float32)
    extra = np.full((2,) + finite.shape[1:], np.nan, np.float32)
    extra[0, :10] = np.inf
    extra[1, :5] = -np.inf
    hostile = np.concatenate([finite, extra])
    return makeVolume(logic, hostile, name="hostile"), makeVolume(logic, finite, name="finite"), hostile, finite


@pytest.mark.parametrize("method", list(Threshold.AUTO_THRESHOLD_METHODS))
def test_auto_threshold_uses_the_finite_voxels_only(logic, method):
    hostileVolume, finiteVolume, _, finite = _hostileAndFinite(logic)
    for mode in ("SET_LOWER_MAX", "SET_MIN_UPPER"):
        expected = logic.autoThresholdRange(finiteVolume, method, mode)
        result = logic.autoThresholdRange(hostileVolume, method, mode)
        assert np.isfinite(result).all()
        assert result == expected
    assert expected[0] == pytest.approx(finite.min())


def test_auto_threshold_on_a_volume_with_nan_and_inf_segments_the_finite_voxels_in_range(logic):
    hostileVolume, finiteVolume, hostile, finite = _hostileAndFinite(logic)
    segmentation = logic.createSegmentation(hostileVolume, "seg")
    segmentId = logic.addSegment(segmentation, "bright")
    low, high = logic.autoThreshold(hostileVolume, segmentation, segmentId, "Otsu", "SET_LOWER_MAX")
    assert (low, high) == logic.autoThresholdRange(finiteVolume, "Otsu", "SET_LOWER_MAX")
    with np.errstate(invalid="ignore"):
        expected = np.isfinite(hostile) & (hostile >= low) & (hostile <= high)
    result = logic.segmentArray(segmentation, segmentId, hostileVolume).astype(bool)
    assert 1000 < int(expected.sum()) < finite.size
    assert np.array_equal(result, expected)


def test_manual_threshold_over_the_intensity_range_selects_every_finite_voxel_and_nothing_else(logic):
    hostileVolume, _, hostile, finite = _hostileAndFinite(logic)
    assert logic.intensityRange(hostileVolume) == (float(finite.min()), float(finite.max()))
    segmentation = logic.createSegmentation(hostileVolume, "seg")
    segmentId = logic.addSegment(segmentation, "all")
    logic.threshold(hostileVolume, segmentation, segmentId, *logic.intensityRange(hostileVolume))
    result = logic.segmentArray(segmentation, segmentId, hostileVolume).astype(bool)
    assert np.array_equal(result, np.isfinite(hostile))
    logic.threshold(hostileVolume, segmentation, segmentId, 50, 150)
    with np.errstate(invalid="ignore"):
        expected = int((np.isfinite(hostile) & (hostile >= 50) & (hostile <= 150)).sum())
    assert int(logic.segmentArray(segmentation, segmentId, hostileVolume).sum()) == expected > 0


def test_volume_without_finite_voxels_is_refused_by_auto_threshold(logic):
    array = np.full((4, 5, 6), np.nan, np.float32)
    array[0] = np.inf
    volume = makeVolume(logic, array)
    segmentation = logic.createSegmentation(volume, "seg")
    segmentId = logic.addSegment(segmentation, "s")
    before = sceneSnapshot(logic, segmentation)
    with pytest.raises(ValueError, match="no finite voxels"):
        logic.autoThreshold(volume, segmentation, segmentId, "Otsu")
    assert logic.intensityRange(volume) is None
    assert sceneSnapshot(logic, segmentation) == before


@pytest.mark.parametrize("method", ["Li", "Triangle"])
def test_auto_threshold_that_finds_no_threshold_is_an_error_not_a_garbage_value(logic, method):
    # On a constant image these ITK calculators fail and leave their threshold unset (a denormal from memory).
    volume = makeVolume(logic, np.full((4, 5, 6), 7.0, np.float32))
    with pytest.raises(ValueError, match=f"'{method}' found no threshold within the intensity range"):
        logic.autoThresholdRange(volume, method)


def test_level_tracing_and_grow_from_seeds_refuse_a_volume_with_nan_or_inf_voxels(logic):
    hostileVolume, _, hostile, _ = _hostileAndFinite(logic)
    segmentation = logic.createSegmentation(hostileVolume, "seg")
    ids = [logic.addSegment(segmentation, name) for name in ("A", "background")]
    seeds = np.zeros(hostile.shape, np.uint8)
    seeds[14:17, 19:22, 13:16] = 1
    logic.writeLabelmapArray(segmentation, ids[0], hostileVolume, seeds)
    seeds[:] = 0
    seeds[2, 2:-2, 2:-2] = 1
    logic.writeLabelmapArray(segmentation, ids[1], hostileVolume, seeds)
    before = sceneSnapshot(logic, segmentation)
    edge = rasOfIjk(hostileVolume, (14, 20, 15 - 8))
    with pytest.raises(ValueError, match="NaN or infinite"):
        logic.levelTrace(hostileVolume, segmentation, ids[0], edge, "3D")
    with pytest.raises(ValueError, match="NaN or infinite"):
        logic.growFromSeeds(hostileVolume, segmentation, ids)
    assert sceneSnapshot(logic, segmentation) == before


# The helpers themselves ---------------------------------------------------------------------------------------------

def test_validation_helpers_accept_numbers_and_refuse_everything_else():
    assert requireNumber("x", np.float32(2.5), minimum=0) == 2.5
    assert requireNumber("x", 0, minimum=0) == 0.0
    assert requireInteger("n", 3.0, 1) == 3 and isinstance(requireInteger("n", np.int64(4), 1), int)
    assert requireRange("r", (np.int16(-5), 7)) == (-5.0, 7.0)
    assert requirePoints("p", (1, 2, 3)).shape == (1, 3)
    for bad in (True, "2", None, [1.0], NAN, INF):
        with pytest.raises(ValueError, match="x must be a finite number"):
            requireNumber("x", bad)
    with pytest.raises(ValueError, match=r"x must be a finite number > 0 mm, got 0"):
        requireNumber("x", 0, minimum=0, minimumInclusive=False, unit="mm")
    with pytest.raises(ValueError, match=r"in \[0, 1\], got 1.5"):
        requireNumber("x", 1.5, minimum=0, maximum=1)
    with pytest.raises(ValueError, match="whole number"):
        requireInteger("n", 2.5, 1)
    with pytest.raises(ValueError, match="pair"):
        requireRange("r", 5)
    with pytest.raises(ValueError, match="no points"):
        requirePoints("p", [])
    with pytest.raises(ValueError, match="3 coordinates"):
        requirePoints("p", [[1, 2]])
