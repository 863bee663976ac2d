#!/usr/bin/env python
"""Batch case of the comparison benchmark: many labels of two label maps, end to end.

The pair: TotalSegmentator's example_seg_fast_force_split.nii.gz (61 labels, 3 mm) upsampled to 1 mm (nearest
neighbour: each voxel repeated 3×3×3, 336×303×366), and a copy in which every label is shifted by one voxel (along
axis 0, 1, 2 in turn) and every third label is eroded once (6-neighbour) before the shift; later labels overwrite
earlier ones where the shifted labels overlap. Both are written as uint8 NIfTI.

Timed, each in its own subprocess (peak resident set size of that process; "extra" = above the same process just
before the measured step, or for the command line above a process that only loads the modules, scipy's included,
and the Logic):
  cli                    `aisegmentation compare ref.nii.gz cmp.nii.gz --json ...`, end to end (wall clock)
  compareLabelmapFiles   the facade on the two files (reading included)
  compareSegmentations   the facade on two segmentation nodes imported from the files (import timed apart)
  engine                 SegmentComparison.compareLabelmaps on the two arrays already in memory
  monai                  MONAI per label on full-volume masks (dice, HD, HD95, symmetric ASD), as MONAI is used
Values: the largest difference of Dice, HD, HD95 and ASSD from the engine's, over all labels.

Usage: benchmark_comparison_batch.py [--repeats N] [--monai-labels N] [--skip-monai] [--timeout S]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SCRIPTS)
sys.path.insert(0, os.path.join(REPO, "AISegmentation"))
sys.path.insert(0, REPO)

SOURCE = "example_seg_fast_force_split.nii.gz"
VALUES = ("dice", "hausdorff", "hausdorff95", "averageSurfaceDistance")


def sourcePath():
    folder = os.environ.get("AISEGMENTATION_DATA_DIR", os.path.join(os.path.dirname(REPO), "shared", "data",
                                                                     "totalsegmentator-examples"))
    return os.path.join(folder, SOURCE)


def makeBatchPair(source, folder):
    """Writes reference.nii.gz and compared.nii.gz (see the module docstring); returns (paths, shape, labels)."""
    import SimpleITK as sitk
    from scipy import ndimage

    image = sitk.ReadImage(source)
    coarse = sitk.GetArrayFromImage(image)
    factors = [int(round(value)) for value in image.GetSpacing()[::-1]]
    reference = coarse
    for axis, factor in enumerate(factors):
        reference = np.repeat(reference, factor, axis=axis)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    origin = np.array(image.GetOrigin()) + direction @ (-(np.array(image.GetSpacing()) - 1) / 2)
    compared = np.zeros_like(reference)
    labels = 0
    for index, box in enumerate(ndimage.find_objects(reference)):
        if box is None:
            continue
        labels += 1
        region = tuple(slice(max(part.start - 2, 0), part.stop + 2) for part in box)
        mask = reference[region] == index + 1
        if labels % 3 == 1:
            mask = ndimage.binary_erosion(mask)
        axis = labels % 3
        shifted = np.zeros_like(mask)
        source, target = [slice(None)] * 3, [slice(None)] * 3
        source[axis], target[axis] = slice(0, -1), slice(1, None)
        shifted[tuple(target)] = mask[tuple(source)]
        compared[region][shifted] = index + 1
    paths = []
    for name, array in (("reference", reference), ("compared", compared)):
        output = sitk.GetImageFromArray(array.astype(np.uint8))
        output.SetSpacing((1.0, 1.0, 1.0))
        output.SetDirection(image.GetDirection())
        output.SetOrigin(tuple(float(value) for value in origin))
        paths.append(os.path.join(folder, f"{name}.nii.gz"))
        sitk.WriteImage(output, paths[-1], useCompression=True)
    return paths, reference.shape, labels


# ---------------------------------------------------------------------------------------------------------------
# Workers (one per subprocess)
# ---------------------------------------------------------------------------------------------------------------

def _readArrays(folder):
    import SimpleITK as sitk

    return [sitk.GetArrayFromImage(sitk.ReadImage(os.path.join(folder, f"{name}.nii.gz")))
            for name in ("reference", "compared")]


def _rowValues(rows):
    return {row["referenceSegment"]: {name: getattr(row["result"], name) for name in VALUES} for row in rows}


def _logic():
    """The Logic, with the modules the comparison loads on first use already loaded (their code is not data)."""
    import scipy.ndimage  # noqa: F401
    import scipy.spatial  # noqa: F401

    from AISegmentationLib.Logic import AISegmentationLogic

    return AISegmentationLogic()


def workStartup(folder):
    from AISegmentationLib.CommandLine import Main  # noqa: F401 - the command line's own imports

    _logic()
    return {"seconds": 0.0, "values": {}}


def workCompareLabelmapFiles(folder):
    from DevTools.Memory import peakMemory, resetPeakMemory

    logic = _logic()
    before = resetPeakMemory()
    start = time.perf_counter()
    rows = logic.compareLabelmapFiles(os.path.join(folder, "reference.nii.gz"),
                                      os.path.join(folder, "compared.nii.gz"))
    return {"seconds": time.perf_counter() - start, "extraMB": (peakMemory() - before) / 1024,
            "values": _rowValues(rows)}


def workCompareSegmentations(folder):
    from AISegmentationLib.Comparison import SegmentComparisonMRML
    from DevTools.Memory import peakMemory, resetPeakMemory

    logic = _logic()
    start = time.perf_counter()
    reference = logic.importLabelmap(os.path.join(folder, "reference.nii.gz"))
    compared = logic.importLabelmap(os.path.join(folder, "compared.nii.gz"))
    importSeconds = time.perf_counter() - start
    pairs = SegmentComparisonMRML.matchSegmentsByLabelValue(reference, compared)
    before = resetPeakMemory()
    start = time.perf_counter()
    rows, _table = logic.compareSegmentations(reference, compared, pairs)
    return {"seconds": time.perf_counter() - start, "extraMB": (peakMemory() - before) / 1024,
            "importSeconds": importSeconds, "values": _rowValues(rows)}


def workEngine(folder):
    from AISegmentationLib.Comparison import SegmentComparison
    from DevTools.Memory import peakMemory, resetPeakMemory

    reference, compared = _readArrays(folder)
    labels = [value for value in SegmentComparison.allLabelBoundingBoxes(reference)
              if value in SegmentComparison.allLabelBoundingBoxes(compared)]
    before = resetPeakMemory()
    start = time.perf_counter()
    results = SegmentComparison.compareLabelmaps(reference, compared, (1.0, 1.0, 1.0), [(v, v) for v in labels],
                                                 device="cpu")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "extraMB": (peakMemory() - before) / 1024,
            "values": {f"Label {a}": {name: getattr(result, name) for name in VALUES} for a, _b, result in results}}


def workMonai(folder, limit=None):
    import torch
    from monai import metrics

    from DevTools.Memory import peakMemory, resetPeakMemory

    reference, compared = _readArrays(folder)
    labels = [int(value) for value in np.unique(reference) if value != 0 and np.any(compared == value)][:limit]
    before = resetPeakMemory()
    start = time.perf_counter()
    values = {}
    common = dict(include_background=True, distance_metric="euclidean", spacing=[1.0, 1.0, 1.0])
    for value in labels:
        y = torch.as_tensor(reference == value)[None, None]
        yPred = torch.as_tensor(compared == value)[None, None]
        values[f"Label {value}"] = {
            "dice": float(metrics.compute_dice(yPred, y, include_background=True)),
            "hausdorff": float(metrics.compute_hausdorff_distance(yPred, y, **common)),
            "hausdorff95": float(metrics.compute_hausdorff_distance(yPred, y, percentile=95, **common)),
            "averageSurfaceDistance": float(metrics.compute_average_surface_distance(yPred, y, symmetric=True,
                                                                                     **common))}
    return {"seconds": time.perf_counter() - start, "extraMB": (peakMemory() - before) / 1024, "values": values,
            "labels": len(labels)}


WORKERS = {"startup": workStartup, "compareLabelmapFiles": workCompareLabelmapFiles,
           "compareSegmentations": workCompareSegmentations, "engine": workEngine, "monai": workMonai}


# ---------------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------------

def _runChild(command, timeout):
    """(stdout, error line) of a child process."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        return "", f"timed out after {timeout} s"
    return stdout, stderr if process.returncode else ""


def measureWorker(name, folder, timeout, extra=()):
    command = [sys.executable, os.path.abspath(__file__), "--worker", name, "--folder", folder, *extra]
    stdout, error = _runChild(command, timeout)
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {"error": (error.strip().splitlines() or ["no output"])[-1]}


def measureCli(folder, timeout):
    """The command line end to end, in a wrapper that reports the child's wall time and peak RSS (wait4)."""
    jsonPath = os.path.join(folder, "cli.json")
    command = [sys.executable, os.path.abspath(__file__), "--cli-wrapper", folder, jsonPath]
    stdout, error = _runChild(command, timeout)
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
            with open(jsonPath, encoding="utf-8") as file:
                result["values"] = {record["referenceSegment"]: {name: float(record[name]) for name in VALUES}
                                    for record in json.load(file)}
            return result
    return {"error": (error.strip().splitlines() or ["no output"])[-1]}


def cliWrapper(folder, jsonPath):
    """Runs the command line as a child and prints its wall time and peak RSS (MB) from wait4."""
    command = [sys.executable, "-m", "AISegmentationLib.CommandLine", "compare",
               os.path.join(folder, "reference.nii.gz"), os.path.join(folder, "compared.nii.gz"), "--json", jsonPath]
    start = time.perf_counter()
    environment = dict(os.environ, PYTHONPATH=os.path.join(REPO, "AISegmentation"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=environment)
    _pid, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    print("RESULT " + json.dumps({"seconds": seconds, "peakMB": usage.ru_maxrss / 1024, "status": status}))


def startupPeak(folder, timeout):
    command = [sys.executable, os.path.abspath(__file__), "--startup-wrapper", folder]
    stdout, _error = _runChild(command, timeout)
    for line in stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return {}


def startupWrapper(folder):
    command = [sys.executable, os.path.abspath(__file__), "--worker", "startup", "--folder", folder]
    start = time.perf_counter()
    environment = dict(os.environ, PYTHONPATH=os.path.join(REPO, "AISegmentation"))
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=environment)
    _pid, _status, usage = os.wait4(process.pid, 0)
    print("RESULT " + json.dumps({"seconds": time.perf_counter() - start, "peakMB": usage.ru_maxrss / 1024}))


def _largestDifference(values, reference):
    differences = [abs(values[label][name] - reference[label][name]) for label in values if label in reference
                   for name in VALUES if np.isfinite(values[label][name]) and np.isfinite(reference[label][name])]
    return max(differences) if differences else float("nan")


def _median(samples):
    return float(np.median(samples)) if samples else float("nan")


def runBatch(repeats=3, monaiLabels=None, skipMonai=False, timeout=1800):
    source = sourcePath()
    if not os.path.exists(source):
        print(f"\nbatch: skipped ({source} not found; set AISEGMENTATION_DATA_DIR)")
        return
    with tempfile.TemporaryDirectory(prefix="aiseg-benchmark-batch-") as folder:
        start = time.perf_counter()
        _paths, shape, labels = makeBatchPair(source, folder)
        volumeMB = int(np.prod(shape)) / 2 ** 20
        print(f"\nbatch: {labels} labels, {shape[0]}x{shape[1]}x{shape[2]} at 1 mm (one uint8 volume = "
              f"{volumeMB:.1f} MB), built in {time.perf_counter() - start:.1f} s", flush=True)
        startup = [startupPeak(folder, timeout) for _ in range(repeats)]
        baselineMB = _median([item["peakMB"] for item in startup if "peakMB" in item])
        rows = {}
        for name in ("cli", "compareLabelmapFiles", "compareSegmentations", "engine"):
            samples = [measureCli(folder, timeout) if name == "cli" else measureWorker(name, folder, timeout)
                       for _ in range(repeats)]
            good = [sample for sample in samples if "error" not in sample]
            if not good:
                rows[name] = samples[0]
                continue
            row = {"times": [sample["seconds"] for sample in good], "values": good[0]["values"]}
            if name == "cli":
                row["extraMB"] = _median([sample["peakMB"] for sample in good]) - baselineMB
            else:
                row["extraMB"] = _median([sample["extraMB"] for sample in good])
            if name == "compareSegmentations":
                row["note"] = f"import of both files {_median([s['importSeconds'] for s in good]):.1f} s apart"
            rows[name] = row
            print(f"  {name}: {[round(t, 2) for t in row['times']]} s", flush=True)
        if not skipMonai:
            extra = ["--monai-labels", str(monaiLabels)] if monaiLabels else []
            result = measureWorker("monai", folder, timeout, extra)
            if "error" not in result:
                result["times"] = [result["seconds"]]
                result["note"] = f"{result['labels']} labels"
            rows["monai"] = result
            print(f"  monai: {result.get('seconds', result.get('error'))}", flush=True)
        printBatchTable(rows, volumeMB, baselineMB)


def printBatchTable(rows, volumeMB, baselineMB):
    print(f"\n== batch: median of the repeats; extra memory in MB and in uint8 volumes; command line baseline "
          f"(modules + Logic) {baselineMB:.0f} MB ==")
    print(f"{'path':22s} {'time s':>8s} {'x engine':>9s} {'extra MB':>9s} {'volumes':>8s} {'max |diff|':>11s}  note")
    engine = rows.get("engine", {})
    engineTime = _median(engine.get("times", []))
    for name, row in rows.items():
        if "error" in row:
            print(f"{name:22s} {row['error']}")
            continue
        seconds = _median(row["times"])
        difference = _largestDifference(row["values"], engine.get("values", {}))
        print(f"{name:22s} {seconds:8.2f} {seconds / engineTime:9.2f} {row['extraMB']:9.1f} "
              f"{row['extraMB'] / volumeMB:8.2f} {difference:11.2e}  {row.get('note', '')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of each of our paths (median reported)")
    parser.add_argument("--monai-labels", type=int, help="MONAI on the first N labels only (default: all)")
    parser.add_argument("--skip-monai", action="store_true", help="leave MONAI out (about 7 minutes on 2 cores)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per measurement")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--cli-wrapper", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--startup-wrapper", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.cli_wrapper:
        cliWrapper(*arguments.cli_wrapper)
    elif arguments.startup_wrapper:
        startupWrapper(arguments.startup_wrapper)
    elif arguments.worker:
        work = WORKERS[arguments.worker]
        result = work(arguments.folder, arguments.monai_labels) if arguments.worker == "monai" else \
            work(arguments.folder)
        print("RESULT " + json.dumps(result))
    else:
        runBatch(arguments.repeats, arguments.monai_labels, arguments.skip_monai, arguments.timeout)


if __name__ == "__main__":
    main()
