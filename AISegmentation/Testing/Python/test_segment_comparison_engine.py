"""Tests of the Slicer-free comparison engine AISegmentationLib.Comparison.SegmentComparison.

Every expected value is computed here independently: surfaces by explicit 6-neighbour loops on a padded array,
distances by all surface-point pairs (scipy.spatial.distance.cdist), percentiles by sorting, or analytically.
"""

import math
import os
import sys

import numpy as np
import pytest
from scipy.spatial.distance import cdist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

from AISegmentationLib.Comparison import SegmentComparison  # noqa: E402

try:
    import torch
except ImportError:  # the torch path is optional
    torch = None

requiresTorch = pytest.mark.skipif(torch is None, reason="torch is not installed")
requiresCuda = pytest.mark.skipif(torch is None or not torch.cuda.is_available(), reason="no CUDA device")

DISTANCE_TOLERANCE = 1e-4  # mm
ANALYTIC_TOLERANCE = 1e-5  # mm: float64 on the CPU path, float32 distance field on the torch path (distances < 50 mm)

def withinTolerance(distances, tolerance):
    """The documented tie rule: d counts as <= tau if d <= tau * (1 + 1e-6) + 1e-9 mm."""
    return distances <= tolerance * (1 + 1e-6) + 1e-9


# ---------------------------------------------------------------------------------------------------------------
# Independent brute-force reference
# ---------------------------------------------------------------------------------------------------------------

def bruteSurface(mask):
    """Voxels of mask with a face neighbour outside it: explicit loop over the 2·ndim neighbours of a padded copy."""
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    inner = tuple(slice(1, -1) for _ in mask.shape)
    hasOutsideNeighbour = np.zeros(mask.shape, dtype=bool)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            neighbour = [slice(1, -1)] * mask.ndim
            neighbour[axis] = slice(1 + step, padded.shape[axis] - 1 + step)
            hasOutsideNeighbour |= ~padded[tuple(neighbour)]
    return padded[inner] & hasOutsideNeighbour


def bruteDirected(reference, compared, spacing):
    referencePoints = np.argwhere(bruteSurface(reference)) * np.asarray(spacing, float)
    comparedPoints = np.argwhere(bruteSurface(compared)) * np.asarray(spacing, float)
    pairwise = cdist(referencePoints, comparedPoints)
    return pairwise.min(axis=1), pairwise.min(axis=0)


def nearestRank(values, percent=95):
    ordered = np.sort(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered) - 1e-12), 1) - 1]


def bruteMetrics(reference, compared, spacing, tolerance=2.0):
    reference, compared = reference.astype(bool), compared.astype(bool)
    intersection = np.count_nonzero(reference & compared)
    union = np.count_nonzero(reference | compared)
    total = np.count_nonzero(reference) + np.count_nonzero(compared)
    forward, backward = bruteDirected(reference, compared, spacing)
    pooled = np.concatenate([forward, backward])
    return {
        "dice": 2 * intersection / total,
        "jaccard": intersection / union,
        "hausdorff": pooled.max(),
        "hausdorff95:max": max(np.percentile(forward, 95), np.percentile(backward, 95)),
        "hausdorff95:pooled": np.percentile(pooled, 95),
        "hausdorff95:slicerrt": (nearestRank(forward) + nearestRank(backward)) / 2,
        "averageSurfaceDistance:pooled": pooled.mean(),
        "averageSurfaceDistance:meanOfMeans": (forward.mean() + backward.mean()) / 2,
        "surfaceDice": np.count_nonzero(withinTolerance(pooled, tolerance)) / len(pooled),
    }


def assertMatchesBrute(result, expected, hausdorff95Mode="max", averageSurfaceDistanceMode="pooled"):
    assert result.dice == pytest.approx(expected["dice"], abs=1e-12)
    assert result.jaccard == pytest.approx(expected["jaccard"], abs=1e-12)
    assert result.hausdorff == pytest.approx(expected["hausdorff"], abs=DISTANCE_TOLERANCE)
    assert result.hausdorff95 == pytest.approx(expected[f"hausdorff95:{hausdorff95Mode}"], abs=DISTANCE_TOLERANCE)
    assert result.averageSurfaceDistance == pytest.approx(
        expected[f"averageSurfaceDistance:{averageSurfaceDistanceMode}"], abs=DISTANCE_TOLERANCE)
    assert result.surfaceDice == pytest.approx(expected["surfaceDice"], abs=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Random masks
# ---------------------------------------------------------------------------------------------------------------

def blob(rng, shape, fill):
    """Smooth random blob: box-filtered noise thresholded at the quantile giving the wanted fill fraction."""
    from scipy import ndimage

    noise = ndimage.uniform_filter(rng.random(shape), size=3, mode="constant")
    return noise > np.quantile(noise, 1 - fill)


def randomPair(seed):
    """A pair of masks of one of several kinds, chosen by the seed (shape, spacing and kind vary)."""
    rng = np.random.default_rng(seed)
    dimension = 2 if seed % 7 == 6 else 3
    shape = tuple(int(n) for n in rng.integers(4, 19 if dimension == 3 else 40, size=dimension))
    spacing = [float(value) for value in rng.uniform(0.3, 3.0, size=dimension)]
    kind = seed % 6
    if kind == 0:  # sparse speckle: many single voxels and tiny islands
        reference, compared = rng.random(shape) < 0.08, rng.random(shape) < 0.12
    elif kind == 1:  # dense noise touching every border
        reference, compared = rng.random(shape) < 0.6, rng.random(shape) < 0.5
    elif kind == 2:  # smooth blobs, overlapping
        reference, compared = blob(rng, shape, 0.3), blob(rng, shape, 0.35)
    elif kind == 3:  # single voxel against a blob
        reference = np.zeros(shape, dtype=bool)
        reference[tuple(int(rng.integers(0, n)) for n in shape)] = True
        compared = blob(rng, shape, 0.2)
    elif kind == 4:  # thin shells (hollow boxes) and a full mask
        reference = np.zeros(shape, dtype=bool)
        low = [int(rng.integers(0, max(n // 3, 1))) for n in shape]
        high = [int(rng.integers(max(lo + 1, n // 2), n + 1)) for lo, n in zip(low, shape)]
        reference[tuple(slice(lo, hi) for lo, hi in zip(low, high))] = True
        reference[tuple(slice(lo + 1, hi - 1) for lo, hi in zip(low, high))] = False
        compared = np.ones(shape, dtype=bool)
    else:  # identical masks but one voxel, as integer 0/1 arrays
        reference = blob(rng, shape, 0.4)
        compared = reference.copy()
        compared[tuple(int(rng.integers(0, n)) for n in shape)] ^= True
        reference, compared = reference.astype(np.uint8), compared.astype(np.int32)
    if not reference.any():
        reference.flat[0] = True
    if not compared.any():
        compared.flat[-1] = True
    return reference, compared, spacing


RANDOM_SEEDS = range(36)


@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_cpu_matches_brute_force_on_random_masks(seed):
    reference, compared, spacing = randomPair(seed)
    tolerance = float(np.random.default_rng(seed).uniform(0.5, 4.0))
    expected = bruteMetrics(reference, compared, spacing, tolerance)
    for hausdorff95Mode in SegmentComparison.HAUSDORFF95_MODES:
        for averageMode in SegmentComparison.AVERAGE_SURFACE_DISTANCE_MODES:
            result = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu",
                                                    hausdorff95Mode=hausdorff95Mode,
                                                    averageSurfaceDistanceMode=averageMode,
                                                    surfaceDiceTolerance=tolerance)
            assertMatchesBrute(result, expected, hausdorff95Mode, averageMode)
            assert result.device == "cpu"


@requiresTorch
@pytest.mark.parametrize("seed", RANDOM_SEEDS)
def test_torch_cpu_path_matches_numpy_path_and_brute_force(seed):
    reference, compared, spacing = randomPair(seed)
    expected = bruteMetrics(reference, compared, spacing)
    for hausdorff95Mode in SegmentComparison.HAUSDORFF95_MODES:
        numpyResult = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu",
                                                     hausdorff95Mode=hausdorff95Mode)
        torchResult = SegmentComparison.compareMasks(reference, compared, spacing, device="torch-cpu",
                                                     hausdorff95Mode=hausdorff95Mode)
        assert torchResult.device == "torch-cpu"
        assertMatchesBrute(torchResult, expected, hausdorff95Mode)
        for name in ("hausdorff", "hausdorff95", "averageSurfaceDistance"):
            assert getattr(torchResult, name) == pytest.approx(getattr(numpyResult, name), abs=DISTANCE_TOLERANCE)
        for name in ("dice", "jaccard", "surfaceDice", "referenceVolume", "comparedVolume"):
            assert getattr(torchResult, name) == pytest.approx(getattr(numpyResult, name), abs=1e-12)


def test_masks_touching_the_border_have_border_surfaces():
    """Outside the array is background: a mask filling the array is all surface on its faces, not empty."""
    full = np.ones((5, 6, 7), dtype=bool)
    inner = np.zeros_like(full)
    inner[1:-1, 1:-1, 1:-1] = True
    result = SegmentComparison.compareMasks(full, inner, (1.0, 1.0, 1.0), device="cpu")
    assert result.hausdorff == pytest.approx(math.sqrt(3))  # array corner to the inner box corner
    assertMatchesBrute(result, bruteMetrics(full, inner, (1.0, 1.0, 1.0)))


# ---------------------------------------------------------------------------------------------------------------
# Analytic cases
# ---------------------------------------------------------------------------------------------------------------

def centeredBox(shape, halfWidths):
    center = [n // 2 for n in shape]
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(c - h, c + h + 1) for c, h in zip(center, halfWidths))] = True
    return mask


def devices():
    return ["cpu"] + (["torch-cpu"] if torch is not None else [])


@pytest.mark.parametrize("device", devices())
def test_nested_boxes_known_distances(device):
    """Box A inside box B (same centre), anisotropic spacing.

    For p on A's shell the nearest point of B's shell is on the nearest face of B: min_i s_i (b_i − |c_i|).
    For q on B's shell (outside A's box) the nearest point of A is the clamp of q onto A's box: |q − clamp(q)|.
    """
    shape, spacing = (15, 19, 23), np.array([2.5, 0.8, 1.1])
    a, b = np.array([2, 4, 5]), np.array([5, 8, 9])
    inner, outer = centeredBox(shape, a), centeredBox(shape, b)
    center = np.array([n // 2 for n in shape])
    innerShell = np.argwhere(inner) - center
    innerShell = innerShell[(np.abs(innerShell) == a).any(axis=1)]
    outerShell = np.argwhere(outer) - center
    outerShell = outerShell[(np.abs(outerShell) == b).any(axis=1)]
    forward = ((b - np.abs(innerShell)) * spacing).min(axis=1)
    backward = np.linalg.norm((outerShell - np.clip(outerShell, -a, a)) * spacing, axis=1)
    result = SegmentComparison.compareMasks(inner, outer, spacing, device=device)
    assert result.hausdorff == pytest.approx(np.linalg.norm((b - a) * spacing), abs=ANALYTIC_TOLERANCE)
    assert result.hausdorff95 == pytest.approx(max(np.percentile(forward, 95), np.percentile(backward, 95)),
                                               abs=ANALYTIC_TOLERANCE)
    pooled = np.concatenate([forward, backward])
    assert result.averageSurfaceDistance == pytest.approx(pooled.mean(), abs=ANALYTIC_TOLERANCE)
    expectedDice = 2 * np.prod(2 * a + 1) / (np.prod(2 * a + 1) + np.prod(2 * b + 1))
    assert result.dice == pytest.approx(expectedDice, abs=1e-12)
    assert result.volumeDifference == pytest.approx(
        (np.prod(2 * b + 1) - np.prod(2 * a + 1)) * np.prod(spacing) / 1000, abs=1e-12)


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("shift", [1, 3])
def test_shifted_boxes_hausdorff_is_the_shift(device, shift):
    """Box B = box A shifted by k voxels along axis 0: every surface point of one box is within k·s0 of the other's
    surface (along axis 0), and the centre of A's bottom face is exactly k·s0 from B's surface, so HD = k·s0."""
    shape, spacing = (16, 14, 15), (2.5, 0.8, 1.1)
    first, second = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    first[2:10, 2:12, 3:13] = True
    second[2 + shift:10 + shift, 2:12, 3:13] = True
    result = SegmentComparison.compareMasks(first, second, spacing, device=device)
    assert result.hausdorff == pytest.approx(shift * 2.5, abs=ANALYTIC_TOLERANCE)
    assert result.dice == pytest.approx((8 - shift) / 8)
    assert result.volumeDifference == 0.0


@pytest.mark.parametrize("device", devices())
def test_parallel_planes_every_distance_equal(device):
    """Two one-voxel-thick planes spanning the array (all surface): every distance is the plane gap."""
    shape, spacing = (12, 9, 10), (1.7, 0.6, 0.9)
    first, second = np.zeros(shape, dtype=bool), np.zeros(shape, dtype=bool)
    first[2], second[9] = True, True
    for mode in SegmentComparison.HAUSDORFF95_MODES:
        result = SegmentComparison.compareMasks(first, second, spacing, device=device, hausdorff95Mode=mode,
                                                surfaceDiceTolerance=7 * 1.7)
        assert result.hausdorff == pytest.approx(7 * 1.7)
        assert result.hausdorff95 == pytest.approx(7 * 1.7)
        assert result.averageSurfaceDistance == pytest.approx(7 * 1.7)
        assert result.surfaceDice == 1.0  # the tie d == tau counts as within tolerance
        assert result.dice == 0.0 and result.jaccard == 0.0
    result = SegmentComparison.compareMasks(first, second, spacing, device=device, surfaceDiceTolerance=11.8)
    assert result.surfaceDice == 0.0


@pytest.mark.parametrize("device", devices())
def test_concentric_spheres_distance_is_radius_difference_within_a_voxel(device):
    shape, spacing = (41, 41, 41), np.array([1.0, 1.0, 1.0])
    grid = np.indices(shape) - 20
    radius = np.sqrt((grid ** 2).sum(axis=0))
    small, large = radius <= 8.0, radius <= 15.0
    result = SegmentComparison.compareMasks(small, large, spacing, device=device)
    for value in (result.hausdorff, result.hausdorff95, result.averageSurfaceDistance):
        assert 7.0 - math.sqrt(3) <= value <= 7.0 + math.sqrt(3)
    assert result.hausdorff >= result.hausdorff95 >= 0
    assert result.surfaceDice == 0.0  # 2 mm tolerance, surfaces about 7 mm apart


@pytest.mark.parametrize("device", devices())
def test_single_voxels_and_two_dimensional_masks(device):
    first, second = np.zeros((6, 7, 8), dtype=bool), np.zeros((6, 7, 8), dtype=bool)
    first[0, 0, 0], second[5, 6, 7] = True, True
    result = SegmentComparison.compareMasks(first, second, (2.0, 3.0, 6.0), device=device)
    expected = math.sqrt((5 * 2.0) ** 2 + (6 * 3.0) ** 2 + (7 * 6.0) ** 2)
    assert result.hausdorff == pytest.approx(expected)
    assert result.hausdorff95 == pytest.approx(expected)
    assert result.referenceVolume == pytest.approx(2.0 * 3.0 * 6.0 / 1000)
    image, shifted = np.zeros((10, 12), dtype=bool), np.zeros((10, 12), dtype=bool)
    image[2:6, 3:9], shifted[5:9, 3:9] = True, True
    result = SegmentComparison.compareMasks(image, shifted, (0.5, 0.7), device=device)
    assertMatchesBrute(result, bruteMetrics(image, shifted, (0.5, 0.7)))
    assert result.referenceVolume == pytest.approx(24 * 0.5 * 0.7 / 100)  # cm² in 2D


# ---------------------------------------------------------------------------------------------------------------
# Empty masks
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device", devices())
def test_both_empty(device):
    empty = np.zeros((4, 5, 6), dtype=bool)
    result = SegmentComparison.compareMasks(empty, empty, (1, 1, 1), device=device)
    assert (result.dice, result.jaccard) == (1.0, 1.0)
    assert (result.hausdorff, result.hausdorff95, result.averageSurfaceDistance) == (0.0, 0.0, 0.0)
    assert result.surfaceDice == 1.0
    assert result.referenceVolume == 0.0 and result.volumeDifference == 0.0
    assert "empty" in result.note


@pytest.mark.parametrize("device", devices())
@pytest.mark.parametrize("emptySide", ["reference", "compared"])
def test_one_empty(device, emptySide):
    empty, full = np.zeros((4, 5, 6), dtype=bool), np.zeros((4, 5, 6), dtype=bool)
    full[1:3, 1:4, 2:5] = True
    reference, compared = (empty, full) if emptySide == "reference" else (full, empty)
    result = SegmentComparison.compareMasks(reference, compared, (1, 2, 3), device=device)
    assert (result.dice, result.jaccard, result.surfaceDice) == (0.0, 0.0, 0.0)
    assert math.isinf(result.hausdorff) and math.isinf(result.hausdorff95)
    assert math.isinf(result.averageSurfaceDistance)
    assert emptySide in result.note and "empty" in result.note
    assert result.volumeDifference == pytest.approx((18 if emptySide == "reference" else -18) * 6 / 1000)


# ---------------------------------------------------------------------------------------------------------------
# MONAI
# ---------------------------------------------------------------------------------------------------------------

MONAI_SEEDS = [2, 4, 8, 10, 14, 21, 26, 32]  # all 3D cases (MONAI's spacing-aware metrics are compared in 3D)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # MONAI's own deprecation notice about its internals
@pytest.mark.parametrize("seed", MONAI_SEEDS)
def test_matches_monai(seed):
    """MONAI's default edges (crop with 1-voxel margin, scipy 6-connected erosion with background outside the array,
    edges = mask XOR erosion) are our surfaces; with distance_metric="euclidean" and spacing its distances are exact
    Euclidean distances between edge-voxel centres (KD-tree, float32). Percentile 95 is torch.quantile (linear),
    the maximum of the two directed values; the symmetric ASD pools both directions; surface Dice counts edge
    voxels within the tolerance. So every value is comparable; only the float32 rounding differs."""
    metrics = pytest.importorskip("monai.metrics")
    reference, compared, spacing = randomPair(seed)
    assert reference.ndim == 3
    reference, compared = reference.astype(bool), compared.astype(bool)
    tolerance = 1.55
    forward, backward = bruteDirected(reference, compared, spacing)
    if np.any(np.abs(np.concatenate([forward, backward]) - tolerance) < 1e-4):
        pytest.skip("a distance ties with the tolerance; float32 rounding would decide it")
    ours = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu", surfaceDiceTolerance=tolerance)
    yPred = torch.as_tensor(compared[None, None].astype(np.float32))
    y = torch.as_tensor(reference[None, None].astype(np.float32))
    common = dict(include_background=True, distance_metric="euclidean", spacing=list(spacing))
    hausdorff = float(metrics.compute_hausdorff_distance(yPred, y, **common))
    hausdorff95 = float(metrics.compute_hausdorff_distance(yPred, y, percentile=95, **common))
    average = float(metrics.compute_average_surface_distance(yPred, y, symmetric=True, **common))
    surfaceDice = float(metrics.compute_surface_dice(yPred, y, class_thresholds=[tolerance], include_background=True,
                                                     distance_metric="euclidean", spacing=list(spacing)))
    dice = float(metrics.compute_dice(yPred, y, include_background=True))
    assert ours.hausdorff == pytest.approx(hausdorff, abs=DISTANCE_TOLERANCE)
    assert ours.hausdorff95 == pytest.approx(hausdorff95, abs=DISTANCE_TOLERANCE)
    assert ours.averageSurfaceDistance == pytest.approx(average, abs=DISTANCE_TOLERANCE)
    assert ours.surfaceDice == pytest.approx(surfaceDice, abs=1e-6)
    assert ours.dice == pytest.approx(dice, abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# Devices, inputs, label maps
# ---------------------------------------------------------------------------------------------------------------

@requiresCuda
@pytest.mark.parametrize("seed", RANDOM_SEEDS[:12])
def test_cuda_path_matches_numpy_path(seed):
    reference, compared, spacing = randomPair(seed)
    numpyResult = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu")
    onDevice = [torch.as_tensor(np.asarray(mask)).cuda() for mask in (reference, compared)]
    for inputs in ((reference, compared), onDevice):
        cudaResult = SegmentComparison.compareMasks(*inputs, spacing, device="cuda")
        assert cudaResult.device == "cuda"
        for name in ("hausdorff", "hausdorff95", "averageSurfaceDistance", "dice", "surfaceDice"):
            assert getattr(cudaResult, name) == pytest.approx(getattr(numpyResult, name), abs=DISTANCE_TOLERANCE)
    assert SegmentComparison.compareMasks(reference, compared, spacing, device="auto").device == "cuda"


def test_cuda_without_cuda_is_a_clear_error():
    if torch is not None and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    mask = np.ones((3, 3, 3), dtype=bool)
    with pytest.raises(RuntimeError, match="cuda|torch"):
        SegmentComparison.compareMasks(mask, mask, (1, 1, 1), device="cuda")
    assert SegmentComparison.compareMasks(mask, mask, (1, 1, 1), device="auto").device == "cpu"


@requiresTorch
def test_torch_tensor_inputs_on_cpu_path():
    reference, compared, spacing = randomPair(3)
    expected = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu")
    result = SegmentComparison.compareMasks(torch.as_tensor(reference), torch.as_tensor(compared), spacing,
                                            device="cpu")
    assert result.asDict() == expected.asDict()


@pytest.mark.parametrize("arguments, message", [
    (dict(compared=np.zeros((4, 4, 5), bool)), "same shape"),
    (dict(spacing=(1.0, 1.0)), "3 values"),
    (dict(spacing=(1.0, 0.0, 1.0)), "> 0"),
    (dict(spacing=(1.0, -2.0, 1.0)), "> 0"),
    (dict(spacing=(1.0, float("nan"), 1.0)), "> 0"),
    (dict(spacing="abc"), "spacing"),
    (dict(hausdorff95Mode="median"), "hausdorff95Mode"),
    (dict(averageSurfaceDistanceMode="max"), "averageSurfaceDistanceMode"),
    (dict(device="tpu"), "device"),
    (dict(surfaceDiceTolerance=-1.0), "surfaceDiceTolerance"),
    (dict(reference=np.zeros(4, bool), compared=np.zeros(4, bool), spacing=(1.0,)), "2D or 3D"),
    (dict(reference=[[1, 0]], compared=[[1, 0]], spacing=(1.0, 1.0)), "numpy array"),
])
def test_bad_input_is_a_value_error(arguments, message):
    call = dict(reference=np.zeros((4, 4, 4), bool), compared=np.zeros((4, 4, 4), bool), spacing=(1.0, 1.0, 1.0))
    call.update(arguments)
    with pytest.raises(ValueError, match=message):
        SegmentComparison.compareMasks(**call)


def test_compare_labelmaps_matches_per_mask_comparison_and_reports_progress():
    rng = np.random.default_rng(5)
    referenceLabels = np.zeros((20, 22, 24), dtype=np.int16)
    comparedLabels = np.zeros_like(referenceLabels)
    referenceLabels[2:9, 3:12, 4:10] = 1
    referenceLabels[12:18, 5:20, 8:22] = 2
    referenceLabels[0, 0, 0] = 3  # touches the border
    comparedLabels[3:9, 2:12, 5:11] = 7
    comparedLabels[11:19, 6:21, 9:23] = 2
    comparedLabels[rng.random(comparedLabels.shape) < 0.01] = 5  # scattered islands
    spacing = (1.5, 0.7, 0.9)
    pairs = [(1, 7), (2, 2), (3, 5), (4, 4), (1, 9)]
    calls = []
    results = SegmentComparison.compareLabelmaps(referenceLabels, comparedLabels, spacing, pairs,
                                                 progressCallback=lambda fraction, message: calls.append(fraction),
                                                 hausdorff95Mode="pooled")
    assert [(r, c) for r, c, _ in results] == pairs
    for referenceLabel, comparedLabel, result in results:
        expected = SegmentComparison.compareMasks(referenceLabels == referenceLabel, comparedLabels == comparedLabel,
                                                  spacing, device="cpu", hausdorff95Mode="pooled")
        for name in ("dice", "hausdorff", "hausdorff95", "averageSurfaceDistance", "surfaceDice", "comparedVolume"):
            assert getattr(result, name) == pytest.approx(getattr(expected, name), abs=1e-9)
    assert results[3][2].dice == 1.0 and "Both masks are empty" in results[3][2].note  # label 4 in neither
    assert math.isinf(results[4][2].hausdorff)  # label 9 absent from the compared map
    assert calls[0] == 0.0 and calls[-1] == 1.0 and calls == sorted(calls)
    with pytest.raises(ValueError, match="Unknown comparison options"):
        SegmentComparison.compareLabelmaps(referenceLabels, comparedLabels, spacing, pairs, percentile=90)
    with pytest.raises(ValueError, match="hausdorff95Mode"):
        SegmentComparison.compareLabelmaps(referenceLabels, comparedLabels, spacing, [], hausdorff95Mode="median")


def test_result_as_dict_and_module_has_no_slicer_imports():
    result = SegmentComparison.compareMasks(np.ones((2, 2, 2), bool), np.ones((2, 2, 2), bool), (1, 1, 1),
                                            device="cpu")
    values = result.asDict()
    for name in ("dice", "jaccard", "referenceVolume", "comparedVolume", "volumeDifference", "hausdorff",
                 "hausdorff95", "averageSurfaceDistance", "surfaceDice", "note", "device"):
        assert name in values
    source = open(SegmentComparison.__file__, encoding="utf-8").read()
    for forbidden in ("import slicer", "import vtk", "import qt", "from slicer"):
        assert forbidden not in source
