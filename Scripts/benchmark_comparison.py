#!/usr/bin/env python
"""Benchmark of AISegmentation's segment comparison engine against the peer libraries that import here.

Builds the standard pair (300×512×512, spacing 2.5×0.8×0.8 mm: two noisy overlapping ellipsoid-like masks, the
compared one with small false-positive islands and internal holes) and a 128×256×256 pair, then times in one run:
ours (CPU; CUDA when torch sees one; the torch code on torch's CPU device for the small case), MONAI
(compute_dice, compute_hausdorff_distance max and 95th percentile, compute_average_surface_distance symmetric),
SimpleITK (LabelOverlapMeasuresImageFilter, HausdorffDistanceImageFilter), DeepMind surface-distance, medpy
(small case only unless --include-slow) and "reference-kdtree", the exact crop + erosion surfaces + cKDTree recipe
written plainly (the yardstick of the single-pair target). Each measurement runs in its own subprocess on masks loaded from .npy
files, so that peak memory (peak resident set size over the call minus the resident size before it, Linux VmHWM
reset through /proc/self/clear_refs; and the tracemalloc peak of the allocations Python traces) is that call's
own. Values are printed beside ours: the libraries differ by definition, not by error (see
AISegmentationLib/Comparison/SegmentComparison.py). Times: best and median of the repeats; "peer/ours" compares medians.
Then the batch case (61 labels end to end: see benchmark_comparison_batch.py).

Usage: benchmark_comparison.py [--small-only] [--skip-slow] [--include-slow] [--repeats N] [--timeout S]
                               [--skip-batch | --batch-only] [--batch-monai-labels N]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "AISegmentation"))
sys.path.insert(0, REPO)

from DevTools import Memory  # noqa: E402

CASES = {
    "big": ((300, 512, 512), (2.5, 0.8, 0.8)),
    "small": ((128, 256, 256), (2.5, 0.8, 0.8)),
}
TOLERANCE = 2.0  # mm, surface Dice
VALUE_NAMES = ("dice", "jaccard", "hausdorff", "hausdorff95", "averageSurfaceDistance", "surfaceDice")


# ---------------------------------------------------------------------------------------------------------------
# Test data
# ---------------------------------------------------------------------------------------------------------------

def smoothField(shape, rng, terms=6, maxFrequency=3.0):
    """Smooth reproducible noise: a sum of separable products of random low-frequency cosines (cheap to build)."""
    field = np.zeros(shape, np.float32)
    for _ in range(terms):
        factors = []
        for length in shape:
            t = np.linspace(0.0, 2 * np.pi, length, dtype=np.float32)
            factors.append(np.cos(rng.uniform(0.5, maxFrequency) * t + rng.uniform(0, 2 * np.pi)))
        field += factors[0][:, None, None] * factors[1][None, :, None] * factors[2][None, None, :]
    return field / np.sqrt(terms)


def ellipsoid(shape, center, radii, field):
    z, y, x = [np.arange(n, dtype=np.float32) for n in shape]
    level = ((z[:, None, None] - center[0]) / radii[0]) ** 2 + ((y[None, :, None] - center[1]) / radii[1]) ** 2
    level = level + ((x[None, None, :] - center[2]) / radii[2]) ** 2
    level += field
    return level < 1.0


def paintBoxes(mask, rng, count, low, high, maxHalfWidth, value):
    for _ in range(count):
        center = rng.integers(low, high)
        half = rng.integers(1, maxHalfWidth + 1, size=3)
        mask[tuple(slice(c - h, c + h + 1) for c, h in zip(center, half))] = value


def makePair(shape, seed=0):
    """Reference: noisy ellipsoid. Compared: shifted, shrunk, differently noisy ellipsoid with small false-positive
    islands around it (within 25 % of the radii) and internal holes (within the inner half)."""
    rng = np.random.default_rng(seed)
    size = np.array(shape, float)
    center, radii = size / 2, size * np.array([0.32, 0.30, 0.34])
    reference = ellipsoid(shape, center, radii, 0.08 * smoothField(shape, rng))
    compared = ellipsoid(shape, center + size * np.array([0.006, 0.004, -0.004]), radii * 0.985,
                         0.09 * smoothField(shape, rng))
    low, high = np.maximum(center - radii * 1.25, 3).astype(int), np.minimum(center + radii * 1.25, size - 3)
    paintBoxes(compared, rng, 60, low, high.astype(int), 2, True)
    paintBoxes(compared, rng, 30, (center - radii / 2).astype(int), (center + radii / 2).astype(int), 3, False)
    return reference, compared


# ---------------------------------------------------------------------------------------------------------------
# Workers: one library, one case, in a subprocess
# ---------------------------------------------------------------------------------------------------------------

def runOurs(reference, compared, spacing, device):
    from AISegmentationLib.Comparison import SegmentComparison

    if device == "cuda":
        import torch

        reference, compared = torch.as_tensor(reference).cuda(), torch.as_tensor(compared).cuda()
        torch.cuda.synchronize()
    result = SegmentComparison.compareMasks(reference, compared, spacing, device=device,
                                            surfaceDiceTolerance=TOLERANCE)
    return {name: getattr(result, name) for name in VALUE_NAMES}


def oursExtraValues(reference, compared, spacing):
    """Our values under the other conventions (not timed), to set beside medpy and SlicerRT."""
    from AISegmentationLib.Comparison import SegmentComparison

    pooled = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu", hausdorff95Mode="pooled",
                                            averageSurfaceDistanceMode="meanOfMeans")
    slicerRt = SegmentComparison.compareMasks(reference, compared, spacing, device="cpu", hausdorff95Mode="slicerrt")
    return {"hausdorff95 pooled": pooled.hausdorff95, "hausdorff95 slicerrt": slicerRt.hausdorff95,
            "averageSurfaceDistance meanOfMeans": pooled.averageSurfaceDistance}


def runReferenceKdTree(reference, compared, spacing):
    """The exact reference recipe, written plainly: crop to the union bounding box, 6-neighbour surfaces by binary
    erosion (outside the array is background), nearest surface points by scipy's cKDTree on both cores."""
    from scipy import ndimage
    from scipy.spatial import cKDTree

    union = reference | compared
    crop = tuple(slice(indices[0], indices[-1] + 1) for indices in
                 (np.flatnonzero(union.any(axis=tuple(other for other in range(3) if other != axis)))
                  for axis in range(3)))
    structure = ndimage.generate_binary_structure(3, 1)
    points = []
    for mask in (reference[crop], compared[crop]):
        surface = mask & ~ndimage.binary_erosion(mask, structure, border_value=0)
        points.append(np.argwhere(surface) * np.asarray(spacing, float))
    forward = cKDTree(points[1]).query(points[0], workers=-1)[0]
    backward = cKDTree(points[0]).query(points[1], workers=-1)[0]
    intersection = np.count_nonzero(reference[crop] & compared[crop])
    pooled = np.concatenate([forward, backward])
    return {"dice": 2 * intersection / (np.count_nonzero(reference) + np.count_nonzero(compared)),
            "hausdorff": float(pooled.max()),
            "hausdorff95": float(max(np.percentile(forward, 95), np.percentile(backward, 95))),
            "averageSurfaceDistance": float(pooled.mean()),
            "surfaceDice": float(np.count_nonzero(pooled <= TOLERANCE * (1 + 1e-6) + 1e-9) / len(pooled))}


def runMonai(reference, compared, spacing):
    import torch
    from monai import metrics

    yPred = torch.as_tensor(compared[None, None])
    y = torch.as_tensor(reference[None, None])
    common = dict(include_background=True, distance_metric="euclidean", spacing=list(spacing))
    return {
        "dice": float(metrics.compute_dice(yPred, y, include_background=True)),
        "hausdorff": float(metrics.compute_hausdorff_distance(yPred, y, **common)),
        "hausdorff95": float(metrics.compute_hausdorff_distance(yPred, y, percentile=95, **common)),
        "averageSurfaceDistance": float(metrics.compute_average_surface_distance(yPred, y, symmetric=True, **common)),
    }


def runSimpleItk(reference, compared, spacing):
    import SimpleITK as sitk

    images = []
    for mask in (reference, compared):
        image = sitk.GetImageFromArray(mask.astype(np.uint8))
        image.SetSpacing([float(value) for value in reversed(spacing)])
        images.append(image)
    overlap = sitk.LabelOverlapMeasuresImageFilter()
    overlap.Execute(images[0], images[1])
    hausdorff = sitk.HausdorffDistanceImageFilter()
    hausdorff.Execute(images[0], images[1])
    return {"dice": overlap.GetDiceCoefficient(), "jaccard": overlap.GetJaccardCoefficient(),
            "hausdorff": hausdorff.GetHausdorffDistance(),
            "averageSurfaceDistance": hausdorff.GetAverageHausdorffDistance()}


def runSurfaceDistance(reference, compared, spacing):
    import surface_distance

    distances = surface_distance.compute_surface_distances(reference, compared, list(spacing))
    forward, backward = surface_distance.compute_average_surface_distance(distances)
    return {"dice": surface_distance.compute_dice_coefficient(reference, compared),
            "hausdorff": surface_distance.compute_robust_hausdorff(distances, 100),
            "hausdorff95": surface_distance.compute_robust_hausdorff(distances, 95),
            "averageSurfaceDistance": (forward + backward) / 2,
            "surfaceDice": surface_distance.compute_surface_dice_at_tolerance(distances, TOLERANCE)}


def runMedpy(reference, compared, spacing):
    from medpy.metric import binary

    return {"dice": binary.dc(compared, reference), "jaccard": binary.jc(compared, reference),
            "hausdorff": binary.hd(compared, reference, voxelspacing=spacing),
            "hausdorff95": binary.hd95(compared, reference, voxelspacing=spacing),
            "averageSurfaceDistance": binary.assd(compared, reference, voxelspacing=spacing)}


LIBRARIES = {
    "ours-cpu": lambda r, c, s: runOurs(r, c, s, "cpu"),
    "ours-cuda": lambda r, c, s: runOurs(r, c, s, "cuda"),
    "ours-torch-cpu": lambda r, c, s: runOurs(r, c, s, "torch-cpu"),
    "reference-kdtree": runReferenceKdTree,
    "monai": runMonai,
    "simpleitk": runSimpleItk,
    "surface-distance": runSurfaceDistance,
    "medpy": runMedpy,
}


def worker(library, folder, spacing, repeats):
    """Runs in a subprocess: warm up on a tiny pair, then time the call on the case; prints one JSON line."""
    function = LIBRARIES[library]
    tiny = np.zeros((8, 9, 10), bool), np.zeros((8, 9, 10), bool)
    tiny[0][2:5, 2:6, 3:7], tiny[1][3:6, 2:7, 3:8] = True, True
    function(*tiny, spacing)
    reference, compared = np.load(os.path.join(folder, "reference.npy")), np.load(os.path.join(folder, "compared.npy"))
    times = []
    for _ in range(repeats):
        rssBefore = Memory.resetPeakMemory()
        tracemalloc.start()
        start = time.perf_counter()
        values = function(reference, compared, spacing)
        if library == "ours-cuda":
            import torch

            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
        tracedPeak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rssDelta = Memory.peakMemory() - rssBefore
    output = {"library": library, "times": times, "values": values, "rssDeltaMB": rssDelta / 1024,
              "tracedPeakMB": tracedPeak / 2 ** 20}
    if library == "ours-cpu":
        output["extra"] = oursExtraValues(reference, compared, spacing)
    print("RESULT " + json.dumps(output))


# ---------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------

def available(library):
    modules = {"ours-cuda": "torch", "ours-torch-cpu": "torch", "monai": "monai", "simpleitk": "SimpleITK",
               "surface-distance": "surface_distance", "medpy": "medpy"}
    if library not in modules:
        return True
    try:
        module = __import__(modules[library])
    except Exception:  # noqa: BLE001 - any import failure means "not available here"
        return False
    return library != "ours-cuda" or module.cuda.is_available()


def measure(library, folder, spacing, repeats, timeout):
    command = [sys.executable, os.path.abspath(__file__), "--worker", library, "--folder", folder,
               "--spacing", *[str(value) for value in spacing], "--repeats", str(repeats)]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"library": library, "error": f"timed out after {timeout} s"}
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"library": library, "error": (completed.stderr.strip().splitlines() or ["no output"])[-1]}


def formatValue(value):
    return "-" if value is None else f"{value:.4f}"


def printTable(caseName, shape, spacing, rows):
    print(f"\n== {caseName}: {shape[0]}x{shape[1]}x{shape[2]}, spacing {spacing} mm ==")
    header = f"{'library':18s} {'best s':>8s} {'median s':>8s} {'peer/ours':>9s} {'RSS+ MB':>8s} {'traced MB':>9s} " + \
        " ".join(f"{name[:10]:>10s}" for name in VALUE_NAMES)
    print(header)
    ours = next((row for row in rows if row["library"] == "ours-cpu" and "times" in row), None)
    for row in rows:
        if "error" in row:
            print(f"{row['library']:18s} {row['error']}")
            continue
        best, median = min(row["times"]), float(np.median(row["times"]))
        ratio = median / float(np.median(ours["times"])) if ours else float("nan")
        values = " ".join(f"{formatValue(row['values'].get(name)):>10s}" for name in VALUE_NAMES)
        print(f"{row['library']:18s} {best:8.3f} {median:8.3f} {ratio:9.1f} {row['rssDeltaMB']:8.1f} "
              f"{row['tracedPeakMB']:9.1f} {values}")
    if ours and "extra" in ours:
        print("ours, other conventions: " + ", ".join(f"{k} = {v:.4f}" for k, v in ours["extra"].items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small-only", action="store_true", help="only the 128x256x256 case")
    parser.add_argument("--skip-slow", action="store_true", help="skip medpy and the torch-cpu path entirely")
    parser.add_argument("--include-slow", action="store_true", help="also run medpy on the big case")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of our engine (peers run once)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per library and case")
    parser.add_argument("--libraries", nargs="*", help="only these libraries")
    parser.add_argument("--skip-batch", action="store_true", help="skip the batch case (benchmark_comparison_batch)")
    parser.add_argument("--batch-only", action="store_true", help="only the batch case")
    parser.add_argument("--batch-monai-labels", type=int, help="MONAI on the first N labels of the batch case")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--spacing", nargs="*", type=float, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        worker(arguments.worker, arguments.folder, tuple(arguments.spacing), arguments.repeats)
        return
    caseNames = [] if arguments.batch_only else ["small"] if arguments.small_only else ["small", "big"]
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="aiseg-benchmark-") as root:
        for caseName in caseNames:
            shape, spacing = CASES[caseName]
            folder = os.path.join(root, caseName)
            os.makedirs(folder)
            start = time.perf_counter()
            reference, compared = makePair(shape)
            np.save(os.path.join(folder, "reference.npy"), reference)
            np.save(os.path.join(folder, "compared.npy"), compared)
            print(f"\n{caseName}: built in {time.perf_counter() - start:.1f} s, reference {reference.sum()} voxels, "
                  f"compared {compared.sum()} voxels")
            del reference, compared
            rows = []
            for library in LIBRARIES:
                if arguments.libraries and library not in arguments.libraries:
                    continue
                slow = library in ("medpy", "ours-torch-cpu")
                if slow and (arguments.skip_slow or (caseName == "big" and not arguments.include_slow)):
                    continue
                if not available(library):
                    rows.append({"library": library, "error": "not available here"})
                    continue
                repeats = arguments.repeats if library.startswith(("ours", "reference")) else 1
                rows.append(measure(library, folder, spacing, repeats, arguments.timeout))
                print(f"  {library}: {rows[-1].get('times', rows[-1].get('error'))}", flush=True)
            printTable(caseName, shape, spacing, rows)
    if not arguments.skip_batch:
        from benchmark_comparison_batch import runBatch

        skipMonai = bool(arguments.libraries) and "monai" not in arguments.libraries
        runBatch(arguments.repeats, arguments.batch_monai_labels, skipMonai, arguments.timeout)


if __name__ == "__main__":
    main()
