"""True / false positive / false negative volumes and percentages, sensitivity, precision and the Hausdorff percentile
as a choice, each against an independent oracle (numpy set operations; brute-force surface distances with scipy's
cdist and numpy's own percentile rules)."""

import json
import math

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from AISegmentationLib.CommandLine.Main import main
from AISegmentationLib.Comparison import SegmentComparison

SPACING = (2.0, 0.7, 0.9)


def _pair(seed):
    rng = np.random.default_rng(seed)
    shape = (14, 16, 18)
    grid = np.indices(shape).transpose(1, 2, 3, 0) * np.array(SPACING)
    center = np.array(shape) * np.array(SPACING) / 2
    reference = np.linalg.norm(grid - center, axis=-1) < 5.0
    compared = np.linalg.norm(grid - center - rng.uniform(-1.5, 1.5, 3), axis=-1) < rng.uniform(3.5, 6.0)
    compared ^= rng.random(shape) < 0.01  # a few scattered errors
    return reference, compared


def _surface(mask):
    padded = np.pad(mask, 1)
    interior = padded.copy()
    for axis in range(3):
        interior[1:-1, 1:-1, 1:-1] &= (np.roll(padded, 1, axis) & np.roll(padded, -1, axis))[1:-1, 1:-1, 1:-1]
    return np.argwhere(mask & ~interior[1:-1, 1:-1, 1:-1]) * np.array(SPACING)


def _directed(reference, compared):
    a, b = _surface(reference), _surface(compared)
    distances = cdist(a, b)
    return distances.min(axis=1), distances.min(axis=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_volumes_percentages_sensitivity_precision_match_numpy(seed):
    reference, compared = _pair(seed)
    result = SegmentComparison.compareMasks(reference, compared, SPACING, device="cpu")
    voxelMl = np.prod(SPACING) / 1000
    tp, fp, fn = (int(np.sum(reference & compared)), int(np.sum(~reference & compared)),
                  int(np.sum(reference & ~compared)))
    union = int(np.sum(reference | compared))
    assert result.truePositiveVolume == pytest.approx(tp * voxelMl, rel=1e-12)
    assert result.falsePositiveVolume == pytest.approx(fp * voxelMl, rel=1e-12)
    assert result.falseNegativeVolume == pytest.approx(fn * voxelMl, rel=1e-12)
    assert (result.truePositivePercent, result.falsePositivePercent, result.falseNegativePercent) == pytest.approx(
        (100 * tp / union, 100 * fp / union, 100 * fn / union), rel=1e-12)
    assert result.sensitivity == pytest.approx(tp / reference.sum(), rel=1e-12)
    assert result.precision == pytest.approx(tp / compared.sum(), rel=1e-12)
    assert result.truePositivePercent + result.falsePositivePercent + result.falseNegativePercent == pytest.approx(100)


@pytest.mark.parametrize("percentile", [50, 90, 99.5, 100])
def test_the_hausdorff_percentile_is_a_choice_in_every_convention(percentile):
    reference, compared = _pair(5)
    forward, backward = _directed(reference, compared)
    expected = {
        "max": max(np.percentile(forward, percentile), np.percentile(backward, percentile)),
        "pooled": np.percentile(np.concatenate([forward, backward]), percentile),
        "slicerrt": (np.percentile(forward, percentile, method="inverted_cdf")
                     + np.percentile(backward, percentile, method="inverted_cdf")) / 2,
    }
    for mode, value in expected.items():
        result = SegmentComparison.compareMasks(reference, compared, SPACING, device="cpu", hausdorff95Mode=mode,
                                                hausdorffPercentile=percentile)
        assert result.hausdorff95 == pytest.approx(value, abs=1e-9), mode
        assert result.hausdorffPercentile == percentile
    default = SegmentComparison.compareMasks(reference, compared, SPACING, device="cpu")
    assert default.hausdorff95 == SegmentComparison.compareMasks(reference, compared, SPACING, device="cpu",
                                                                 hausdorffPercentile=95).hausdorff95
    with pytest.raises(ValueError, match="hausdorffPercentile"):
        SegmentComparison.compareMasks(reference, compared, SPACING, hausdorffPercentile=101)


def test_empty_masks_give_defined_or_nan_ratios_never_a_silent_zero():
    empty, mask = np.zeros((6, 6, 6), bool), np.zeros((6, 6, 6), bool)
    mask[2:4, 2:4, 2:4] = True
    both = SegmentComparison.compareMasks(empty, empty, SPACING, device="cpu")
    assert (both.sensitivity, both.precision, both.truePositivePercent) == (1.0, 1.0, 0.0)
    noReference = SegmentComparison.compareMasks(empty, mask, SPACING, device="cpu")
    assert math.isnan(noReference.sensitivity) and noReference.precision == 0.0
    assert noReference.falsePositivePercent == 100.0 and "sensitivity is undefined" in noReference.note
    noCompared = SegmentComparison.compareMasks(mask, empty, SPACING, device="cpu")
    assert noCompared.sensitivity == 0.0 and math.isnan(noCompared.precision)
    assert noCompared.falseNegativeVolume == pytest.approx(8 * np.prod(SPACING) / 1000)


def test_cli_writes_the_new_numbers_as_valid_json(sampleFile, tmp_path):
    jsonPath = tmp_path / "rows.json"
    assert main(["compare", sampleFile("example_seg.nii.gz"), sampleFile("example_seg_fast.nii.gz"), "--device",
                 "cpu", "--hd-percentile", "90", "--json", str(jsonPath), "--csv", str(tmp_path / "rows.csv")]) == 0
    rows = json.loads(jsonPath.read_text(), parse_constant=lambda name: pytest.fail(f"{name} in JSON"))
    absent = next(row for row in rows if row["comparedSegment"] is None)
    assert absent["precision"] is None and absent["sensitivity"] == 0.0 and absent["hausdorffPercentile"] == 90
    assert "Hausdorff 90% (mm)" in (tmp_path / "rows.csv").read_text().splitlines()[0]


@pytest.mark.parametrize("mode", ["max", "pooled", "slicerrt"])
def test_the_torch_path_gives_the_same_new_numbers(mode):
    pytest.importorskip("torch")
    reference, compared = _pair(7)
    options = dict(hausdorff95Mode=mode, hausdorffPercentile=90)
    cpu = SegmentComparison.compareMasks(reference, compared, SPACING, device="cpu", **options)
    torchCpu = SegmentComparison.compareMasks(reference, compared, SPACING, device="torch-cpu", **options)
    for key in ("hausdorff95", "sensitivity", "precision", "truePositiveVolume", "falsePositivePercent"):
        assert getattr(torchCpu, key) == pytest.approx(getattr(cpu, key), abs=1e-4), key
