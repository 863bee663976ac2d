"""Exact comparison metrics of two binary segmentations: Dice, Jaccard, volumes, Hausdorff, surface distances.

Slicer-free numeric engine: numpy/scipy on the CPU, torch (imported lazily) on a CUDA device or on torch's CPU device.

Definitions
-----------
Masks A (reference) and B (compared) are boolean arrays on one grid (any nonzero value counts as inside);
``spacing`` is in mm, in array-axis order.

- Dice = 2|A∩B| / (|A|+|B|); Jaccard = |A∩B| / |A∪B|; volumes in mL (voxel count × product of spacing / 1000;
  for 2D masks the "volumes" are areas in cm², pixel count × product of spacing / 100).
  ``volumeDifference`` = compared volume − reference volume.
- Surface S(X): voxels of X with at least one of their 6 face neighbours outside X (4 in 2D); outside the array
  counts as background. Distances are exact Euclidean between voxel centres, in mm.
- Directed distances D(A→B) = for each p in S(A), min over q in S(B) of |p−q|.
- HD = max of both directed maxima. HD95 = max of the two directed 95th percentiles (linear interpolation) —
  the MONAI / MetricsReloaded convention (``hausdorff95Mode="max"``). Options: ``"pooled"`` (95th percentile,
  linear interpolation, of both directions together, medpy), ``"slicerrt"`` (mean of the two directed
  nearest-rank 95th percentiles; the nearest-rank percentile of n values is the ceil(0.95·n)-th smallest).
  Linear interpolation: with the n values sorted ascending x[0..n-1] and h = 0.95·(n−1),
  P = x[⌊h⌋] + (h−⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋]) (numpy's default, torch.quantile's "linear").
- ASSD = mean of D(A→B) ∪ D(B→A) pooled (``averageSurfaceDistanceMode="pooled"``); option ``"meanOfMeans"``:
  mean of the two directed means.
- Surface Dice at tolerance τ mm = (#{p∈S(A): d≤τ} + #{q∈S(B): d≤τ}) / (|S(A)|+|S(B)|).
- Empty masks: both empty → Dice = Jaccard = 1, distances 0 (and surface Dice 1); exactly one empty →
  Dice = Jaccard = 0, distances = inf (and surface Dice 0), with a message in ``note`` saying why.
  Never an exception, never a silent 0.

Beyond these (SlicerRT's Segment Comparison): TP = |A∩B|, FP = |B∖A|, FN = |A∖B|; their volumes in mL and their
percentages of |A∪B| (0 when both masks are empty); sensitivity = TP/|A|, precision = TP/|B| (both empty: 1, by
the Dice convention; an empty denominator mask otherwise: NaN, undefined, and the note says so). The percentile of
the "HD95" value is an option (``hausdorffPercentile``, default 95) in each of the three conventions above.

Known peers differ by definition, not by error (e.g. SimpleITK's HausdorffDistanceImageFilter uses all voxels,
not surfaces; DeepMind's surface-distance weights surface elements by area). With the defaults the results match
MONAI's ``compute_hausdorff_distance`` (max and ``percentile=95``) and
``compute_average_surface_distance(symmetric=True)`` with ``spacing`` set.

How it is computed (exact, no approximate distance transform): one pass for voxel counts and each mask's bounding
box; crop to the union bounding box with a 1-voxel margin; 6-neighbour surfaces (slabs in parallel threads); on
the CPU nearest surface distances by KD-tree (``scipy.spatial.cKDTree``, the two directions in parallel threads);
with torch an exact separable squared Euclidean distance
transform of the target surface on the crop (1D nearest-feature scan, brute-force lower envelope along the next
axis, final envelope evaluated only at the query points); percentiles by selection (``np.partition`` /
``torch.kthvalue``; ``torch.quantile`` refuses more than 2^24 values). Distances are float64, except the torch
path's dense distance-transform field, which is float32 (half the GPU memory traffic): a relative rounding below
2e-7, i.e. under 1e-4 mm for distances up to 500 mm. For the surface Dice count a distance counts as ≤ τ if it
is ≤ τ·(1 + 1e-6) + 1e-9 mm, so that lattice distances equal to τ (e.g. 2 × 0.8 mm with τ = 1.6 mm) do not
depend on rounding.
"""

import concurrent.futures
import dataclasses
import importlib.util
import logging
import math
import os
import sys

import numpy as np

from ..Boxes import boundingBox
from ..Validation import requireNumber
from .Metrics import KEYS as METRIC_KEYS

HAUSDORFF95_MODES = ("max", "pooled", "slicerrt")
AVERAGE_SURFACE_DISTANCE_MODES = ("pooled", "meanOfMeans")
DEVICES = ("auto", "cpu", "cuda", "torch-cpu")

_logger = logging.getLogger(__name__)

_PERCENTILE = 95
# Distances up to tolerance·(1 + relative) + absolute count as within the surface Dice tolerance: lattice distances
# equal to the tolerance (e.g. 2 × 0.8 mm vs 1.6 mm) must not depend on rounding (which differs between paths).
_TIE_RELATIVE, _TIE_ABSOLUTE = 1e-6, 1e-9

# KD-tree leaf size: larger leaves are faster here (one batched query per tree, not amortized over many).
_KDTREE_LEAF_SIZE = 64
# Slabs (along axis 0) in which the CPU path finds surfaces, so that the work stays in the processor cache.
_SLAB_VOXELS = 1 << 21
# Fewer surface points than this: one thread (starting threads costs more than it saves).
_PARALLEL_MINIMUM_POINTS = 1 << 14
# Largest intermediate tensor (elements) of the torch distance transform.
_TORCH_CHUNK_ELEMENTS = {"cpu": 1 << 22, "cuda": 1 << 27}


def _asDict(self):
    return dataclasses.asdict(self)


# Metrics of one comparison (one float field per declared metric, see Metrics.METRICS), then the note and the
# options they were computed with; distances in mm, volumes in mL (cm² for 2D masks).
ComparisonResult = dataclasses.make_dataclass(
    "ComparisonResult",
    [(key, float) for key in METRIC_KEYS] + [
        ("note", str, dataclasses.field(default="")), ("device", str, dataclasses.field(default="cpu")),
        ("hausdorff95Mode", str, dataclasses.field(default="max")),
        ("averageSurfaceDistanceMode", str, dataclasses.field(default="pooled")),
        ("surfaceDiceTolerance", float, dataclasses.field(default=2.0)),
        ("hausdorffPercentile", float, dataclasses.field(default=95.0))],
    namespace={"asDict": _asDict})
ComparisonResult.__module__ = __name__  # pickled by name (make_dataclass's module argument needs Python 3.12)
ComparisonResult.__doc__ = ("Metrics of one comparison (the fields of Metrics.METRICS, in their order), its note and "
                            "options; distances in mm, volumes in mL (cm² for 2D masks).")


@dataclasses.dataclass
class _Options:
    hausdorff95Mode: str
    averageSurfaceDistanceMode: str
    surfaceDiceTolerance: float
    hausdorffPercentile: float = 95


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------

def compareMasks(reference, compared, spacing, device="auto", hausdorff95Mode="max",
                 averageSurfaceDistanceMode="pooled", surfaceDiceTolerance=2.0, hausdorffPercentile=95):
    """Compare a reference and a compared binary mask (numpy arrays or torch tensors of one shape, 2D or 3D).

    See the module docstring for the exact definitions. ``device``: "cpu" (numpy/scipy), "cuda" (torch on the
    GPU), "torch-cpu" (the torch code on torch's CPU device), "auto" (CUDA when torch sees one, else "cpu"; torch is
    not imported when no GPU driver is present).
    Returns a :class:`ComparisonResult`. Raises ValueError for bad input, RuntimeError if torch/CUDA is missing
    for the requested device.
    """
    options = _validateOptions(hausdorff95Mode, averageSurfaceDistanceMode, surfaceDiceTolerance, hausdorffPercentile)
    _checkShapes(reference, compared)
    spacing = _validateSpacing(spacing, len(reference.shape))
    resolvedDevice = _resolveDevice(device)
    _logger.debug("Comparing masks of shape %s, spacing %s mm, on %s", tuple(reference.shape), spacing.tolist(),
                  resolvedDevice)
    if resolvedDevice == "cpu":
        counts, distances = _numpyCountsAndDistances(_asNumpyMask(reference), _asNumpyMask(compared), spacing)
    else:
        counts, distances = _torchCountsAndDistances(reference, compared, spacing, resolvedDevice)
    return _makeResult(counts, distances, spacing, options, resolvedDevice)


def compareMaskSlabs(reference, compared, spacing, device="auto", hausdorff95Mode="max",
                     averageSurfaceDistanceMode="pooled", surfaceDiceTolerance=2.0, hausdorffPercentile=95):
    """:func:`compareMasks` for masks read slab by slab, so that no full-size mask is ever built: ``reference`` and
    ``compared`` have a ``shape`` (3D) and give their boolean slab for ``[start:stop]`` along axis 0 (numpy arrays
    do; so does :class:`LabelSlabs`). Same results as compareMasks on the full masks. On a torch device the full
    masks are built first."""
    options = _validateOptions(hausdorff95Mode, averageSurfaceDistanceMode, surfaceDiceTolerance, hausdorffPercentile)
    _checkShapes(reference, compared)
    spacing = _validateSpacing(spacing, len(reference.shape))
    resolvedDevice = _resolveDevice(device)
    if resolvedDevice != "cpu":
        depth = reference.shape[0]
        counts, distances = _torchCountsAndDistances(reference[0:depth], compared[0:depth], spacing, resolvedDevice)
    else:
        counts, distances = _slabCountsAndDistances(reference, compared, spacing)
    return _makeResult(counts, distances, spacing, options, resolvedDevice)


ABSENT_NOTES = {
    "compared": "Absent from the compared segmentation.",
    "reference": "Absent from the reference segmentation (a false-positive structure).",
}


def absentStructureResult(voxels, spacing, absentFrom, device="auto", hausdorff95Mode="max",
                          averageSurfaceDistanceMode="pooled", surfaceDiceTolerance=2.0, hausdorffPercentile=95):
    """:class:`ComparisonResult` of a structure that one side does not have at all (``absentFrom``: "compared" or
    "reference"), the other side's segment having ``voxels`` voxels: the metrics of an empty mask on that side
    (Dice 0, infinite distances; both empty: agreement by convention), computed from the count alone, with a note
    saying which side lacks the structure."""
    if absentFrom not in ABSENT_NOTES:
        raise ValueError(f"absentFrom must be one of {tuple(ABSENT_NOTES)}, got {absentFrom!r}")
    options = _validateOptions(hausdorff95Mode, averageSurfaceDistanceMode, surfaceDiceTolerance, hausdorffPercentile)
    spacing = _validateSpacing(spacing, len(spacing))
    voxels = int(voxels)
    counts = _Counts(voxels, 0, 0) if absentFrom == "compared" else _Counts(0, voxels, 0)
    result = _makeResult(counts, None, spacing, options, _resolveDevice(device))
    result.note = f"{ABSENT_NOTES[absentFrom]} {result.note}"
    return result


class LabelSlabs:
    """The mask ``labels == value`` of a numpy label array, computed slab by slab when indexed along axis 0."""

    def __init__(self, labels, value):
        self.labels, self.value, self.shape = labels, value, labels.shape

    def __getitem__(self, index):
        return self.labels[index] == self.value


def compareLabelmaps(referenceLabels, comparedLabels, spacing, labelPairs, progressCallback=None, **options):
    """Compare label pairs of two integer label arrays of one shape.

    ``labelPairs``: iterable of (referenceLabel, comparedLabel). ``options``: keyword arguments of
    :func:`compareMasks` (device, hausdorff95Mode, ...). ``progressCallback(fraction, message)`` is called before
    each pair and at the end. Returns a list of (referenceLabel, comparedLabel, ComparisonResult).
    """
    labelPairs = [(referenceLabel, comparedLabel) for referenceLabel, comparedLabel in labelPairs]
    _checkShapes(referenceLabels, comparedLabels)
    spacing = _validateSpacing(spacing, len(referenceLabels.shape))
    validateComparisonOptions(options)
    isTorch = _isTorchTensor(referenceLabels) or _isTorchTensor(comparedLabels)
    if not isTorch:
        referenceLabels, comparedLabels = np.asarray(referenceLabels), np.asarray(comparedLabels)
    referenceBoxes = None if isTorch else labelBoundingBoxes(referenceLabels, [p[0] for p in labelPairs])
    comparedBoxes = None if isTorch else labelBoundingBoxes(comparedLabels, [p[1] for p in labelPairs])
    results = []
    for index, (referenceLabel, comparedLabel) in enumerate(labelPairs):
        if progressCallback:
            progressCallback(index / max(len(labelPairs), 1), f"Comparing label {referenceLabel} with {comparedLabel}")
        region = _pairRegion(referenceLabels.shape, referenceBoxes, comparedBoxes, referenceLabel, comparedLabel)
        if isTorch:
            result = compareMasks(referenceLabels[region] == referenceLabel, comparedLabels[region] == comparedLabel,
                                  spacing, **options)
        else:
            result = compareMaskSlabs(LabelSlabs(referenceLabels[region], referenceLabel),
                                      LabelSlabs(comparedLabels[region], comparedLabel), spacing, **options)
            releaseFreedMemory()
        results.append((referenceLabel, comparedLabel, result))
    if progressCallback:
        progressCallback(1.0, f"Compared {len(labelPairs)} label pairs")
    return results


def releaseFreedMemory():
    """Give the memory freed by the last comparison back to the system (glibc's malloc_trim; elsewhere nothing).

    Called between the pairs of a batch: the allocator arenas of the worker threads otherwise keep freed blocks, and
    the resident size of a batch would grow past what any one pair needs."""
    global _mallocTrim
    if _mallocTrim is None:
        _mallocTrim = False
        if sys.platform.startswith("linux"):
            import ctypes

            try:
                _mallocTrim = ctypes.CDLL(None).malloc_trim
            except (OSError, AttributeError):  # not glibc (e.g. musl)
                pass
    if _mallocTrim:
        _mallocTrim(0)


_mallocTrim = None


# ---------------------------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------------------------

def validateComparisonOptions(options):
    """ValueError for an unknown option or a bad value among the keyword options of :func:`compareMasks`
    (device, hausdorff95Mode, averageSurfaceDistanceMode, surfaceDiceTolerance); RuntimeError when the device
    needs torch/CUDA that is missing."""
    unknown = set(options) - {"device", "hausdorff95Mode", "averageSurfaceDistanceMode", "surfaceDiceTolerance",
                              "hausdorffPercentile"}
    if unknown:
        raise ValueError(f"Unknown comparison options: {sorted(unknown)}")
    _validateOptions(options.get("hausdorff95Mode", "max"), options.get("averageSurfaceDistanceMode", "pooled"),
                     options.get("surfaceDiceTolerance", 2.0), options.get("hausdorffPercentile", 95))
    _resolveDevice(options.get("device", "auto"))


def _validateOptions(hausdorff95Mode, averageSurfaceDistanceMode, surfaceDiceTolerance, hausdorffPercentile=95):
    if hausdorff95Mode not in HAUSDORFF95_MODES:
        raise ValueError(f"hausdorff95Mode must be one of {HAUSDORFF95_MODES}, got {hausdorff95Mode!r}")
    if averageSurfaceDistanceMode not in AVERAGE_SURFACE_DISTANCE_MODES:
        raise ValueError(f"averageSurfaceDistanceMode must be one of {AVERAGE_SURFACE_DISTANCE_MODES}, "
                         f"got {averageSurfaceDistanceMode!r}")
    tolerance = requireNumber("surfaceDiceTolerance", surfaceDiceTolerance, minimum=0, unit="mm")
    percentile = requireNumber("hausdorffPercentile", hausdorffPercentile, minimum=0, unit="%")
    if percentile > 100:
        raise ValueError(f"hausdorffPercentile must be at most 100 (%), got {hausdorffPercentile!r}")
    return _Options(hausdorff95Mode, averageSurfaceDistanceMode, tolerance, percentile)


def _checkShapes(reference, compared):
    for name, array in (("reference", reference), ("compared", compared)):
        if not hasattr(array, "shape"):
            raise ValueError(f"{name} must be a numpy array or a torch tensor, got {type(array).__name__}")
    if tuple(reference.shape) != tuple(compared.shape):
        raise ValueError(f"reference and compared must have the same shape, got {tuple(reference.shape)} "
                         f"and {tuple(compared.shape)}")
    if len(reference.shape) not in (2, 3):
        raise ValueError(f"masks must be 2D or 3D, got {len(reference.shape)} dimensions")


def _validateSpacing(spacing, dimension):
    try:
        values = [float(value) for value in spacing]
    except (TypeError, ValueError):
        raise ValueError(f"spacing must be a sequence of {dimension} numbers (mm), got {spacing!r}") from None
    if len(values) != dimension:
        raise ValueError(f"spacing must have {dimension} values (one per array axis), got {len(values)}: {spacing!r}")
    if not all(math.isfinite(value) and value > 0 for value in values):
        raise ValueError(f"spacing values must be finite and > 0 mm, got {spacing!r}")
    return np.array(values, dtype=np.float64)


def _resolveDevice(device):
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "cpu":
        return "cpu"
    if device == "auto" and "torch" not in sys.modules and not _gpuDriverPresent():
        return "cpu"  # importing torch costs seconds; without a GPU driver it cannot see a CUDA device
    torch = _importTorch(required=device != "auto")
    if device == "auto":
        return "cuda" if torch is not None and torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but torch sees no CUDA device; use device='cpu' or 'auto'")
    return device


def _gpuDriverPresent():
    """Cheap test, without importing torch, of whether torch could see a CUDA (or ROCm) device: torch installed,
    devices not hidden by CUDA_VISIBLE_DEVICES, and a GPU driver present (unknown platforms: assume yes)."""
    if importlib.util.find_spec("torch") is None:
        return False
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    if sys.platform.startswith("linux"):
        return any(os.path.exists(path) for path in (
            "/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/nvidiactl", "/dev/kfd", "/dev/dxg"))
    if sys.platform == "darwin":
        return False  # no CUDA on macOS
    if sys.platform == "win32":
        import ctypes.util

        return ctypes.util.find_library("nvcuda") is not None
    return True


def _importTorch(required):
    try:
        import torch
    except ImportError:
        if required:
            raise RuntimeError("this device needs PyTorch (torch), which is not installed; use device='cpu'") from None
        return None
    return torch


def _isTorchTensor(array):
    return type(array).__module__.startswith("torch")


def _asNumpyMask(array):
    if _isTorchTensor(array):
        array = array.detach().cpu().numpy()
    array = np.asarray(array)
    return array if array.dtype == bool else array != 0


# ---------------------------------------------------------------------------------------------------------------
# Shared: bounding boxes, surfaces, aggregation
# ---------------------------------------------------------------------------------------------------------------

@dataclasses.dataclass
class _Counts:
    reference: int
    compared: int
    intersection: int


def _unionCrop(referenceBox, comparedBox, shape):
    """Slices of the union of two bounding boxes ((lo, hi) per axis, hi exclusive) with a 1-voxel margin."""
    boxes = [box for box in (referenceBox, comparedBox) if box is not None]
    return tuple(slice(max(min(box[axis][0] for box in boxes) - 1, 0),
                       min(max(box[axis][1] for box in boxes) + 1, shape[axis])) for axis in range(len(shape)))


def _axisSlice(dimension, axis, part):
    index = [slice(None)] * dimension
    index[axis] = part
    return tuple(index)


def _surfaceMask(mask):
    """Voxels of ``mask`` with a face neighbour outside it; outside the array is background (numpy or torch)."""
    interior = mask.clone() if hasattr(mask, "clone") else mask.copy()
    dimension = len(mask.shape)
    for axis in range(dimension):
        interior[_axisSlice(dimension, axis, slice(1, None))] &= mask[_axisSlice(dimension, axis, slice(None, -1))]
        interior[_axisSlice(dimension, axis, slice(None, -1))] &= mask[_axisSlice(dimension, axis, slice(1, None))]
        interior[_axisSlice(dimension, axis, 0)] = False
        interior[_axisSlice(dimension, axis, -1)] = False
    return mask ^ interior


class _NumpyOps:
    @staticmethod
    def kthSmallest(values, ks):
        """The k-th smallest values (0-based ks) by one partial sort."""
        ks = sorted(set(ks))
        partitioned = np.partition(values, ks)
        return {k: float(partitioned[k]) for k in ks}

    @staticmethod
    def concatenate(first, second):
        return np.concatenate([first, second])

    @staticmethod
    def scalars(values):
        return [float(value) for value in values]


class _TorchOps:
    @staticmethod
    def kthSmallest(values, ks):
        import torch
        return {k: torch.kthvalue(values, k + 1).values for k in set(ks)}

    @staticmethod
    def concatenate(first, second):
        import torch
        return torch.cat([first, second])

    @staticmethod
    def scalars(values):
        import torch
        return torch.stack([torch.as_tensor(value).to(torch.float64) for value in values]).tolist()


def _linearPercentile(values, ops, percentile=_PERCENTILE):
    position = (values.shape[0] - 1) * percentile / 100.0
    lower = int(math.floor(position))
    upper = min(lower + 1, values.shape[0] - 1)
    selected = ops.kthSmallest(values, [lower, upper])
    return selected[lower] + (position - lower) * (selected[upper] - selected[lower])


def _nearestRankPercentile(values, ops, percentile=_PERCENTILE):
    if percentile == int(percentile):  # exact integer arithmetic: ceil(p n / 100)
        rank = -(-int(percentile) * values.shape[0] // 100)
    else:
        rank = math.ceil(percentile * values.shape[0] / 100)
    rank = min(max(rank, 1), values.shape[0])  # at least 1, at most n
    return ops.kthSmallest(values, [rank - 1])[rank - 1]


def _hausdorff95(referenceToCompared, comparedToReference, mode, ops, percentile=_PERCENTILE):
    if mode == "pooled":
        return _linearPercentile(ops.concatenate(referenceToCompared, comparedToReference), ops, percentile)
    if mode == "slicerrt":
        return (_nearestRankPercentile(referenceToCompared, ops, percentile)
                + _nearestRankPercentile(comparedToReference, ops, percentile)) / 2
    return _maximum(_linearPercentile(referenceToCompared, ops, percentile),
                    _linearPercentile(comparedToReference, ops, percentile))


def _maximum(first, second):
    return first if first >= second else second


def _distanceMetrics(referenceToCompared, comparedToReference, options, ops):
    """HD, HD95, ASSD, surface Dice from the two directed distance arrays (numpy arrays or torch tensors)."""
    referenceCount, comparedCount = referenceToCompared.shape[0], comparedToReference.shape[0]
    tolerance = options.surfaceDiceTolerance * (1 + _TIE_RELATIVE) + _TIE_ABSOLUTE
    referenceSum, comparedSum = referenceToCompared.sum(), comparedToReference.sum()
    values = [
        _maximum(referenceToCompared.max(), comparedToReference.max()),
        _hausdorff95(referenceToCompared, comparedToReference, options.hausdorff95Mode, ops,
                     options.hausdorffPercentile),
        (referenceToCompared <= tolerance).sum() + (comparedToReference <= tolerance).sum(),
    ]
    if options.averageSurfaceDistanceMode == "pooled":
        values.append((referenceSum + comparedSum) / (referenceCount + comparedCount))
    else:
        values.append((referenceSum / referenceCount + comparedSum / comparedCount) / 2)
    hausdorff, hausdorff95, withinTolerance, averageSurfaceDistance = ops.scalars(values)
    surfaceDice = withinTolerance / (referenceCount + comparedCount)
    return hausdorff, hausdorff95, averageSurfaceDistance, surfaceDice


def _confusion(counts, voxelVolume):
    """True / false positive / false negative volumes and percentages (of the union), sensitivity, precision."""
    truePositive = counts.intersection
    falsePositive, falseNegative = counts.compared - truePositive, counts.reference - truePositive
    union = truePositive + falsePositive + falseNegative

    def percent(count):
        return 100.0 * count / union if union else 0.0

    def ratio(denominator):  # both masks empty: 1 by the Dice convention; this one empty: undefined
        return truePositive / denominator if denominator else (1.0 if union == 0 else math.nan)

    return dict(truePositiveVolume=truePositive * voxelVolume, falsePositiveVolume=falsePositive * voxelVolume,
                falseNegativeVolume=falseNegative * voxelVolume, truePositivePercent=percent(truePositive),
                falsePositivePercent=percent(falsePositive), falseNegativePercent=percent(falseNegative),
                sensitivity=ratio(counts.reference), precision=ratio(counts.compared))


def _makeResult(counts, distances, spacing, options, device):
    voxelVolume = float(np.prod(spacing)) / (1000.0 if len(spacing) == 3 else 100.0)
    union = counts.reference + counts.compared - counts.intersection
    referenceVolume, comparedVolume = counts.reference * voxelVolume, counts.compared * voxelVolume
    common = dict(referenceVolume=referenceVolume, comparedVolume=comparedVolume,
                  volumeDifference=comparedVolume - referenceVolume, device=device,
                  hausdorff95Mode=options.hausdorff95Mode,
                  averageSurfaceDistanceMode=options.averageSurfaceDistanceMode,
                  surfaceDiceTolerance=options.surfaceDiceTolerance,
                  hausdorffPercentile=float(options.hausdorffPercentile), **_confusion(counts, voxelVolume))
    if union == 0:
        return ComparisonResult(dice=1.0, jaccard=1.0, hausdorff=0.0, hausdorff95=0.0, averageSurfaceDistance=0.0,
                                surfaceDice=1.0, note="Both masks are empty: perfect agreement by convention.",
                                **common)
    dice = 2.0 * counts.intersection / (counts.reference + counts.compared)
    jaccard = counts.intersection / union
    if counts.reference == 0 or counts.compared == 0:
        emptyName = "reference" if counts.reference == 0 else "compared"
        undefined = "sensitivity" if counts.reference == 0 else "precision"
        note = (f"The {emptyName} mask is empty: surface distances are infinite, surface Dice is 0 and {undefined} "
                "is undefined (NaN).")
        return ComparisonResult(dice=dice, jaccard=jaccard, hausdorff=math.inf, hausdorff95=math.inf,
                                averageSurfaceDistance=math.inf, surfaceDice=0.0, note=note, **common)
    ops = _NumpyOps if device == "cpu" else _TorchOps
    hausdorff, hausdorff95, averageSurfaceDistance, surfaceDice = _distanceMetrics(*distances, options, ops)
    return ComparisonResult(dice=dice, jaccard=jaccard, hausdorff=hausdorff, hausdorff95=hausdorff95,
                            averageSurfaceDistance=averageSurfaceDistance, surfaceDice=surfaceDice, **common)


# ---------------------------------------------------------------------------------------------------------------
# CPU path: numpy + scipy KD-tree
# ---------------------------------------------------------------------------------------------------------------

def _numpyCountsAndDistances(reference, compared, spacing):
    referenceCount, comparedCount = int(np.count_nonzero(reference)), int(np.count_nonzero(compared))
    if referenceCount == 0 or comparedCount == 0:
        return _Counts(referenceCount, comparedCount, 0), None
    crop = _unionCrop(boundingBox(reference), boundingBox(compared), reference.shape)
    return _slabCountsAndDistances(reference[crop], compared[crop], spacing)


def _slabCountsAndDistances(reference, compared, spacing):
    """Counts and directed distances of two mask sources (numpy arrays, or objects with ``shape`` whose
    ``[start:stop]`` gives the boolean slab along axis 0), read slab by slab."""
    surfaces = _numpySurfaces(reference, compared, spacing)
    _logger.debug("Shape %s: %d reference and %d compared surface voxels", tuple(reference.shape),
                  len(surfaces.referencePoints), len(surfaces.comparedPoints))
    counts = _Counts(surfaces.referenceCount, surfaces.comparedCount, surfaces.intersection)
    if counts.reference == 0 or counts.compared == 0:
        return counts, None
    return counts, _kdTreeDistances(surfaces)


@dataclasses.dataclass
class _Surfaces:
    referencePoints: np.ndarray  # (n, dimension) voxel centres in mm, relative to the mask source's origin
    comparedPoints: np.ndarray
    referenceOnCompared: np.ndarray  # bool per reference surface point: also a compared surface point
    comparedOnReference: np.ndarray
    intersection: int
    referenceCount: int
    comparedCount: int


def _numpySurfaces(reference, compared, spacing):
    """Surface points (mm) of both masks, voxel counts and the intersection count, slab by slab along axis 0 (cache
    friendly; slabs in parallel threads)."""
    depth = reference.shape[0]
    step = max(1, _SLAB_VOXELS // max(1, int(np.prod(reference.shape[1:]))))
    starts = range(0, depth, step)
    work = [(reference, compared, start, min(start + step, depth), spacing) for start in starts]
    if len(work) > 1 and _cpuCount() > 1:
        with concurrent.futures.ThreadPoolExecutor(min(_cpuCount(), len(work))) as executor:
            slabs = list(executor.map(lambda arguments: _numpySlabSurfaces(*arguments), work))
    else:
        slabs = [_numpySlabSurfaces(*arguments) for arguments in work]
    points = [np.concatenate([slab[i] for slab in slabs]) for i in range(4)]
    return _Surfaces(*points, *(sum(slab[i] for slab in slabs) for i in range(4, 7)))


def _cpuCount():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _numpySlabSurfaces(reference, compared, start, stop, spacing):
    low, high = max(start - 1, 0), min(stop + 1, reference.shape[0])
    inner = slice(start - low, stop - low)
    referenceSlab, comparedSlab = _asNumpyMask(reference[low:high]), _asNumpyMask(compared[low:high])
    referenceSurface = _surfaceMask(referenceSlab)[inner]
    comparedSurface = _surfaceMask(comparedSlab)[inner]
    referenceSlab, comparedSlab = referenceSlab[inner], comparedSlab[inner]
    intersection = int(np.count_nonzero(referenceSlab & comparedSlab))
    referenceFlat, comparedFlat = np.flatnonzero(referenceSurface), np.flatnonzero(comparedSurface)
    referenceOnCompared = comparedSurface.ravel()[referenceFlat]
    comparedOnReference = referenceSurface.ravel()[comparedFlat]
    return (_flatToPoints(referenceFlat, referenceSurface.shape, start, spacing),
            _flatToPoints(comparedFlat, comparedSurface.shape, start, spacing),
            referenceOnCompared, comparedOnReference, intersection,
            int(np.count_nonzero(referenceSlab)), int(np.count_nonzero(comparedSlab)))


def _flatToPoints(flat, shape, firstOffset, spacing):
    """(n, dimension) float64 positions (mm) of flat positions in an array of ``shape`` (index × spacing, index on
    axis 0 plus ``firstOffset``)."""
    points = np.empty((flat.size, len(shape)), dtype=np.float64)
    remainder = flat
    for axis in range(len(shape) - 1, 0, -1):
        remainder, index = np.divmod(remainder, shape[axis])
        np.multiply(index, spacing[axis], out=points[:, axis])
    np.multiply(remainder + firstOffset, spacing[0], out=points[:, 0])
    return points


def _kdTreeDistances(surfaces):
    """(D(A→B), D(B→A)): the two directions run in parallel threads (scipy releases the GIL while it builds a tree
    and, with workers=-1, splits each query over the cores)."""
    from scipy.spatial import cKDTree

    referencePoints, comparedPoints = surfaces.referencePoints, surfaces.comparedPoints
    work = [(referencePoints, surfaces.referenceOnCompared, comparedPoints),
            (comparedPoints, surfaces.comparedOnReference, referencePoints)]
    if _cpuCount() > 1 and min(len(referencePoints), len(comparedPoints)) >= _PARALLEL_MINIMUM_POINTS:
        with concurrent.futures.ThreadPoolExecutor(2) as executor:
            return tuple(executor.map(lambda arguments: _directedKdTreeDistances(*arguments, cKDTree), work))
    return tuple(_directedKdTreeDistances(*arguments, cKDTree) for arguments in work)


def _directedKdTreeDistances(queryPoints, onTarget, targetPoints, cKDTree):
    """Distance from each query point to the nearest target point (0 for points that are target points)."""
    distances = np.zeros(len(queryPoints), dtype=np.float64)
    toQuery = ~onTarget
    if np.any(toQuery):
        tree = cKDTree(targetPoints, leafsize=_KDTREE_LEAF_SIZE, balanced_tree=False, compact_nodes=False)
        workers = -1 if np.count_nonzero(toQuery) >= _PARALLEL_MINIMUM_POINTS else 1
        distances[toQuery] = tree.query(queryPoints[toQuery], k=1, workers=workers)[0]
    return distances


# ---------------------------------------------------------------------------------------------------------------
# Torch path (CUDA or torch's CPU device): exact separable distance transform on the crop
# ---------------------------------------------------------------------------------------------------------------

def _torchCountsAndDistances(reference, compared, spacing, device):
    import torch

    torchDevice = torch.device("cuda" if device == "cuda" else "cpu")
    reference, compared = _asTorchMask(reference, torchDevice), _asTorchMask(compared, torchDevice)
    referenceCount, comparedCount = int(reference.count_nonzero()), int(compared.count_nonzero())
    if referenceCount == 0 or comparedCount == 0:
        return _Counts(referenceCount, comparedCount, 0), None
    crop = _unionCrop(_torchBoundingBox(reference), _torchBoundingBox(compared), reference.shape)
    reference, compared = reference[crop], compared[crop]
    counts = _Counts(referenceCount, comparedCount, int((reference & compared).count_nonzero()))
    referenceSurface, comparedSurface = _surfaceMask(reference), _surfaceMask(compared)
    chunk = _TORCH_CHUNK_ELEMENTS["cuda" if torchDevice.type == "cuda" else "cpu"]
    spacingList = [float(value) for value in spacing]
    referenceToCompared = _torchDirectedDistances(referenceSurface, comparedSurface, spacingList, chunk)
    comparedToReference = _torchDirectedDistances(comparedSurface, referenceSurface, spacingList, chunk)
    return counts, (referenceToCompared, comparedToReference)


def _asTorchMask(array, torchDevice):
    import torch

    tensor = array if _isTorchTensor(array) else torch.as_tensor(np.ascontiguousarray(array))
    tensor = tensor.to(torchDevice)
    return tensor if tensor.dtype == torch.bool else tensor != 0


def _torchBoundingBox(mask):
    import torch

    box = []
    for axis in range(mask.ndim):
        profile = torch.any(mask, dim=[other for other in range(mask.ndim) if other != axis])
        indices = torch.nonzero(profile).flatten()
        if indices.numel() == 0:
            return None
        box.append((int(indices[0]), int(indices[-1]) + 1))
    return box


def _torchDirectedDistances(querySurface, targetSurface, spacing, chunk):
    """Exact distance (mm) from each query surface voxel to the nearest target surface voxel, float64.

    Separable squared EDT of the target surface: an exact 1D scan along the first axis, brute-force lower envelopes
    along the middle axes (dense, on the crop), and the last axis's envelope evaluated only at the query voxels.
    The middle (dense, most costly) axis is the crop's shortest.
    """
    import torch

    dimension = targetSurface.ndim
    order = _torchAxisOrder(targetSurface.shape)
    squared = _torchSquaredLineDistances(targetSurface, order[0], spacing[order[0]])
    for axis in order[1:-1]:
        squared = _torchLowerEnvelope(squared, axis, spacing[axis], chunk)
    lastAxis = order[-1]
    queryIndices = torch.nonzero(querySurface)
    rows = squared.movedim(lastAxis, -1)
    otherAxes = [axis for axis in range(dimension) if axis != lastAxis]
    positions = torch.arange(rows.shape[-1], device=rows.device, dtype=torch.float64)
    result = torch.empty(queryIndices.shape[0], dtype=torch.float64, device=rows.device)
    step = max(1, chunk // rows.shape[-1])
    for start in range(0, queryIndices.shape[0], step):
        indices = queryIndices[start:start + step]
        lines = rows[tuple(indices[:, axis] for axis in otherAxes)].to(torch.float64)
        offsets = (positions[None, :] - indices[:, lastAxis, None].to(torch.float64)) * spacing[lastAxis]
        result[start:start + step] = (lines + offsets * offsets).amin(dim=1)
    return result.sqrt()


def _torchAxisOrder(shape):
    """(first, middle..., last): the shortest axis in the middle (dense brute-force envelope), then the others."""
    axes = sorted(range(len(shape)), key=lambda axis: shape[axis])
    if len(shape) == 2:
        return [axes[1], axes[0]]
    return [axes[2], axes[0], axes[1]]


def _torchFieldDtype():
    import torch

    return torch.float32


def _torchSquaredLineDistances(target, axis, spacing):
    """Squared distance (mm²) to the nearest target voxel on the same line along ``axis`` (inf when none)."""
    import torch

    length = target.shape[axis]
    shape = [1] * target.ndim
    shape[axis] = length
    positions = torch.arange(length, device=target.device, dtype=torch.int32).reshape(shape).expand(target.shape)
    far = 4 * length + 4
    previous = torch.where(target, positions, torch.full_like(positions, -far)).cummax(dim=axis).values
    following = torch.where(target, positions, torch.full_like(positions, far))
    following = following.flip(axis).cummin(dim=axis).values.flip(axis)
    steps = torch.minimum(positions - previous, following - positions).to(torch.float64)
    squared = ((steps * spacing) ** 2).to(_torchFieldDtype())
    return squared.masked_fill_(steps > length, math.inf)


def _torchLowerEnvelope(squared, axis, spacing, chunk):
    """min over j of squared[..., j, ...] + (spacing·(i−j))² along ``axis``, by brute force in chunks (exact)."""
    import torch

    lines = squared.movedim(axis, -1)
    length = lines.shape[-1]
    flat = lines.reshape(-1, length)
    positions = torch.arange(length, device=squared.device, dtype=torch.float64) * spacing
    weights = ((positions[:, None] - positions[None, :]) ** 2).to(squared.dtype)  # [i, j]
    result = torch.empty_like(flat)
    step = max(1, chunk // (length * length))
    for start in range(0, flat.shape[0], step):
        result[start:start + step] = (flat[start:start + step, None, :] + weights[None]).amin(dim=2)
    return result.reshape(lines.shape).movedim(-1, axis)


# ---------------------------------------------------------------------------------------------------------------
# Label maps
# ---------------------------------------------------------------------------------------------------------------

_MAX_FIND_OBJECTS_LABEL = 1 << 16


def labelBoundingBoxes(labels, wanted):
    """{label: ((lo, hi) per axis, hi exclusive) or None when absent} of the wanted labels of a numpy label array.

    Labels 1..65536 of an integer array: one scipy.ndimage.find_objects pass (other values are ignored by it);
    any other label (0, negative, larger, non-integer): one comparison pass each.
    """
    from scipy import ndimage

    wanted = set(wanted)
    integerArray = np.issubdtype(labels.dtype, np.integer) and labels.size > 0
    direct = {label for label in wanted if integerArray and isinstance(label, (int, np.integer))
              and 0 < label <= _MAX_FIND_OBJECTS_LABEL}
    boxes = {}
    if direct:
        objects = ndimage.find_objects(labels, max_label=int(max(direct)))
        boxes = {label: (None if objects[label - 1] is None else
                         [(region.start, region.stop) for region in objects[label - 1]]) for label in direct}
    for label in wanted - direct:
        boxes[label] = boundingBox(labels == label) if labels.size else None
    return boxes


def allLabelBoundingBoxes(labels):
    """{label: ((lo, hi) per axis)} of every nonzero value of a numpy label array, in ascending order: one
    scipy.ndimage.find_objects pass for integers 0..65536 (no sort); np.unique and a pass per value otherwise."""
    from scipy import ndimage

    if labels.size == 0:
        return {}
    if np.issubdtype(labels.dtype, np.integer):
        low, high = int(labels.min()), int(labels.max())
        if low >= 0 and high <= _MAX_FIND_OBJECTS_LABEL:
            return {index + 1: [(region.start, region.stop) for region in found] for index, found
                    in enumerate(ndimage.find_objects(labels, max_label=high)) if found is not None}
    values = [value.item() for value in np.unique(labels) if value != 0]
    boxes = labelBoundingBoxes(labels, values)
    return {value: boxes[value] for value in values}


def _pairRegion(shape, referenceBoxes, comparedBoxes, referenceLabel, comparedLabel):
    if referenceBoxes is None or comparedBoxes is None:
        return tuple(slice(None) for _ in shape)
    referenceBox, comparedBox = referenceBoxes[referenceLabel], comparedBoxes[comparedLabel]
    if referenceBox is None and comparedBox is None:
        return tuple(slice(0, 1) for _ in shape)
    return _unionCrop(referenceBox, comparedBox, shape)


# ---------------------------------------------------------------------------------------------------------------
# Error map
# ---------------------------------------------------------------------------------------------------------------

TRUE_POSITIVE, FALSE_POSITIVE, FALSE_NEGATIVE = 1, 2, 3
ERROR_LABELS = {TRUE_POSITIVE: "true positive", FALSE_POSITIVE: "false positive", FALSE_NEGATIVE: "false negative"}


def errorLabels(reference, compared):
    """uint8 array of the masks' shape: TRUE_POSITIVE where both, FALSE_POSITIVE where only the compared mask,
    FALSE_NEGATIVE where only the reference mask, 0 elsewhere (numpy arrays, any nonzero value is inside)."""
    _checkShapes(reference, compared)
    reference, compared = _asNumpyMask(reference), _asNumpyMask(compared)
    labels = np.zeros(reference.shape, np.uint8)
    labels[reference & compared] = TRUE_POSITIVE
    labels[compared & ~reference] = FALSE_POSITIVE
    labels[reference & ~compared] = FALSE_NEGATIVE
    return labels
