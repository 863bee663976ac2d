"""Benchmark of the training pipeline (Training/): time per step and per epoch, peak memory.

    .venv/bin/python Scripts/benchmark_training.py [--cases 8] [--folds 2] [--epochs 5] [--iterations 25]
        [--preset tiny|none] [--device cpu|cuda] [--output DIR]

Synthetic phantom cases (DevTools/build_tiny_models.phantomCase) are made as segmentation nodes, then the four steps
run as a user would run them (logic.training): dataset, plan (nnU-Net's plan, shrunk with --preset tiny), fit (every
fold, one after the other), evaluate. Prints one table: seconds per step, mean seconds per epoch (from nnU-Net's
logged epoch times), the peak resident memory of this process and of the child processes (the training child), and
the cross-validation Dice. The nnU-Net environment comes from $AISEGMENTATION_ENVIRONMENTS_DIR (as the tests).
"""

import argparse
import logging
import os
import resource
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "AISegmentation"))
sys.path.insert(0, ROOT)


def _cases(logic, count):
    import numpy as np

    from DevTools import build_tiny_models
    from DevTools.SyntheticImages import makeVolume

    cases = []
    for index in range(count):
        channels, truth = build_tiny_models.phantomCase(500 + index)
        volume = makeVolume(logic, channels[0], name=f"phantom{index}")
        segmentation = logic.createSegmentation(volume, f"phantom{index} segmentation")
        for value, name in ((1, "bright"), (2, "dark")):
            segmentId = logic.addSegment(segmentation, name)
            logic.writeLabelmapArray(segmentation, segmentId, volume, (truth == value).astype(np.uint8))
        cases.append({"case": f"phantom{index}", "volumes": volume, "segmentation": segmentation})
    return cases


def _peakMegabytes(who):
    return resource.getrusage(who).ru_maxrss / 1024.0  # Linux: kilobytes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=25)
    parser.add_argument("--preset", default="tiny", help="plan preset, or 'none' for nnU-Net's own plan")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", help="project folder (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from AISegmentationLib.Logic import AISegmentationLogic
    from AISegmentationLib.Runtime import createHeadlessRuntime

    os.environ.setdefault("AISEGMENTATION_MODELS_DIR", tempfile.mkdtemp(prefix="benchmark-models-"))
    logic = AISegmentationLogic(createHeadlessRuntime())
    project = args.output or os.path.join(tempfile.mkdtemp(prefix="benchmark-training-"), "project")
    timings = {}
    start = time.perf_counter()
    logic.training.buildTrainingDataset(project, cases=_cases(logic, args.cases), datasetId=778,
                                        datasetName="Benchmark", channelNames=["CT"], numberOfFolds=args.folds)
    timings["dataset"] = time.perf_counter() - start
    start = time.perf_counter()
    plan = logic.training.planTraining(project, planPreset=None if args.preset == "none" else args.preset,
                                       progressCallback=lambda *_: None)
    timings["plan"] = time.perf_counter() - start
    start = time.perf_counter()
    job = logic.training.startFitModel(project, epochs=args.epochs, iterationsPerEpoch=args.iterations,
                                       device=args.device)
    job.wait()
    timings["fit"] = time.perf_counter() - start
    start = time.perf_counter()
    evaluation = logic.training.evaluateTraining(project, device=args.device, progressCallback=lambda *_: None)
    timings["evaluate"] = time.perf_counter() - start
    epochSeconds = [record["seconds"] for record in job.epochs]
    configuration = plan["configurations"]["3d_fullres"]
    print(f"Training benchmark: {args.cases} cases of 40³, {args.folds} folds x {args.epochs} epochs x "
          f"{args.iterations} iterations, plan patch {configuration['patchSize']}, device {args.device}")
    for step, seconds in timings.items():
        print(f"  {step:<10} {seconds:8.1f} s")
    print(f"  per epoch  {sum(epochSeconds) / max(1, len(epochSeconds)):8.2f} s (mean of {len(epochSeconds)}, "
          f"nnU-Net's epoch times)")
    print(f"  peak memory: this process {_peakMegabytes(resource.RUSAGE_SELF):.0f} MB, children "
          f"{_peakMegabytes(resource.RUSAGE_CHILDREN):.0f} MB")
    for row in evaluation["perFold"]:
        print(f"  CV fold {row['fold']} {row['structure']}: Dice {row['dice']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
