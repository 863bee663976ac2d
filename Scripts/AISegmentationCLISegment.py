"""The ``segment`` subcommand of the headless CLI: AI segmentation with nnU-Net v2 or TotalSegmentator.

    aisegmentation segment nnunet INPUT... --model MODEL_FOLDER [--model ...] --output OUT.seg.nrrd
    aisegmentation segment totalsegmentator INPUT --task total --fast --output OUT.seg.nrrd

Wired into AISegmentationCLI.py with ``addSegmentParser(commands)`` and ``COMMANDS["segment"] = runSegment``.
The backend runs out of process (its isolated environment when created, see --create-environment). Ctrl-C or
SIGTERM while it runs cancels the job (its whole process tree ends) before the command exits; errors, exit codes
and -v are handled by AISegmentationCLI.main.
"""

import contextlib
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "AISegmentation"))

from AISegmentationLib.AILogic import ENVIRONMENT_CHOICES  # noqa: E402
from AISegmentationLib.Backends.NnUNetModels import DEFAULT_CHECKPOINT  # noqa: E402
from AISegmentationLib.Backends.NnUNetBackend import DEVICES  # noqa: E402


def _addCommonOptions(parser):
    parser.add_argument("--output", required=True, help="output segmentation file (.seg.nrrd)")
    parser.add_argument("--segmentation", help="existing .seg.nrrd to write into (default: a new segmentation)")
    parser.add_argument("--labelmap-output", help="also export all segments as a label-map image (e.g. .nii.gz)")
    parser.add_argument("--device", default="auto", choices=DEVICES, help="compute device (default: auto)")
    parser.add_argument("--environment", default="auto",
                        help=f"Python to run the backend: {', '.join(ENVIRONMENT_CHOICES)} or a Python executable "
                             f"(default: auto = its isolated environment when ready, else the current Python)")
    parser.add_argument("--create-environment", action="store_true",
                        help="create (or repair) the backend's isolated environment first (pip install)")
    parser.add_argument("--accept-irregular-spacing", action="store_true",
                        help="load a DICOM series with a missing slice or an uneven slice spacing anyway, resampled "
                             "onto a regular grid (recorded in the volume's provenance); refused by default")


def addSegmentParser(subparsers):
    """Add ``segment nnunet|totalsegmentator`` to the CLI's subparsers."""
    segment = subparsers.add_parser("segment", help="AI segmentation with nnU-Net v2 or TotalSegmentator")
    backends = segment.add_subparsers(dest="backend", required=True)

    nnunet = backends.add_parser("nnunet", help="a trained nnU-Net v2 model (or an ensemble of several)")
    nnunet.add_argument("volumes", nargs="+", metavar="INPUT",
                        help="input volume(s) in the model's channel order (dataset.json channel_names)")
    nnunet.add_argument("--model", action="append", required=True, metavar="FOLDER",
                        help="trained model folder <trainer>__<plans>__<configuration> (repeat to ensemble)")
    nnunet.add_argument("--folds", nargs="+", help="folds to use: numbers and/or 'all' (default: all trained)")
    nnunet.add_argument("--checkpoint", default=DEFAULT_CHECKPOINT, help="checkpoint file name (default: %(default)s)")
    nnunet.add_argument("--no-tta", action="store_true", help="switch test-time augmentation (mirroring) off")
    nnunet.add_argument("--step-size", type=float, default=0.5, help="sliding-window step, fraction of the patch")
    _addCommonOptions(nnunet)

    total = backends.add_parser("totalsegmentator", help="TotalSegmentator (its tasks, fast / fastest, roi_subset)")
    total.add_argument("volumes", nargs=1, metavar="INPUT", help="CT or MR volume")
    total.add_argument("--task", default="total", help="TotalSegmentator task (default: total)")
    speed = total.add_mutually_exclusive_group()
    speed.add_argument("--fast", action="store_true", help="3 mm model")
    speed.add_argument("--fastest", action="store_true", help="6 mm model")
    total.add_argument("--roi-subset", nargs="+", metavar="NAME", help="only these structures (crops the run)")
    total.add_argument("--license", help="license number for licensed tasks")
    total.add_argument("--no-download", action="store_true", help="never download missing weights")
    total.add_argument("--import-weights", metavar="ZIP_OR_FOLDER", help="install weights from a zip/folder first")
    total.add_argument("--usage-statistics", action="store_true",
                       help="allow TotalSegmentator's anonymous usage statistics (off by default)")
    _addCommonOptions(total)
    return segment


def _aiLogic(logic):
    """The logic itself once the AI mixin is part of it; until then a mixed-in view of the same runtime."""
    if hasattr(logic, "runNnUNet"):
        return logic
    from AISegmentationLib.AILogic import AISegmentationAIMixin

    mixed = type("AISegmentationAILogic", (AISegmentationAIMixin, type(logic)), {})
    return mixed(logic.runtime)


def _progress(percent, message, state={"last": None}):  # noqa: B006 - remembers the last line printed
    if message != state["last"]:
        state["last"] = message
        logging.info("%3.0f %% %s", percent, message)


JOB_CANCEL_SECONDS = 30


def _waitForJob(job):
    """Wait for a backend job; when the wait is interrupted (Ctrl-C, SIGTERM), cancel the job and give its process
    tree time to end before the interruption goes on."""
    try:
        return job.wait(progressCallback=_progress)
    except BaseException:
        if not job.done:
            job.cancel()
            with contextlib.suppress(Exception):
                job.wait(timeout=JOB_CANCEL_SECONDS)
        raise


def runSegment(logic, args):
    logic = _aiLogic(logic)
    backend = "nnunet" if args.backend == "nnunet" else "totalsegmentator"
    if args.create_environment:
        _waitForJob(logic.startCreateBackendEnvironment(backend))
        details = logic.backendEnvironmentDetails(backend)
        print(f"Environment '{details['name']}': {details['state']} ({details['folder']})")
    volumes = [logic.loadVolume(path, acceptIrregularSpacing=args.accept_irregular_spacing) for path in args.volumes]
    segmentation = logic.loadSegmentation(args.segmentation) if args.segmentation else None
    if args.backend == "nnunet":
        job = logic.startNnUNet(volumes, args.model, segmentation, folds=args.folds, checkpoint=args.checkpoint,
                                device=args.device, tta=not args.no_tta, stepSize=args.step_size,
                                environment=args.environment)
    else:
        if args.import_weights:
            print(f"Imported weights: {', '.join(logic.importTotalSegmentatorWeights(args.import_weights))}")
        job = logic.startTotalSegmentator(volumes[0], args.task, segmentation, fast=args.fast, fastest=args.fastest,
                                          roiSubset=args.roi_subset, device=args.device, licenseNumber=args.license,
                                          allowDownload=not args.no_download, usageStatistics=args.usage_statistics,
                                          environment=args.environment)
    segmentation = _waitForJob(job)
    print(f"Segmentation: {logic.saveSegmentation(segmentation, args.output)}")
    if args.labelmap_output:
        print(f"Label map: {logic.exportLabelmap(segmentation, volumes[0], args.labelmap_output)[0]}")
    print(f"{segmentation.GetAttribute('AISegmentation.backend')} on "
          f"{segmentation.GetAttribute('AISegmentation.device')} in "
          f"{segmentation.GetAttribute('AISegmentation.durationSeconds')} s")
    for row in logic.segmentStatistics(segmentation, volumes[0]):
        print(f"  {row['segment']:<24} {row['voxels']:>10} voxels {row['volumeMl']:>12.2f} mL")
