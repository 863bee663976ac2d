"""Headless AISegmentation command line: the module's Logic on files, no desktop Slicer needed.

Run through Scripts/aisegmentation (which prepares .venv and runs ``python -m AISegmentationLib.CommandLine``).
Every subcommand reads files and writes files; `aisegmentation SUBCOMMAND --help` documents its options.

Every output file is written under a temporary name beside it and renamed when complete. Exit codes: 0 success,
2 bad input or a failed step (one line on stderr), 1 an unexpected internal error, 130 Ctrl-C (SIGINT),
143 SIGTERM; an interrupted run leaves each output either as it was or complete. -v logs progress details and,
on an error, its traceback.
"""

import argparse
import logging
import os
import signal
import sys
import threading

from .Common import Terminated, addInputs as _addInputs, addMatchArguments, addVolumeOptions, loadVolume
from .Common import prepareInputs as _prepare, saveOutputs as _save, seedSegmentIds
from .DicomOptions import addDicomOutputArguments, addSeriesArgument, writeDicomOutputs

EXIT_INTERNAL_ERROR = 1
EXIT_ERROR = 2
EXIT_SIGINT = 128 + 2
EXIT_SIGTERM = 128 + 15
INTERRUPTED_NOTE = "outputs are either complete or left as they were"


_pendingSignals = []


def _deferSignal(signum, frame):
    _pendingSignals.append(signum)


def _raiseForSignal(signum, frame=None):
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated()


def _deferSignals():
    """Hold SIGINT / SIGTERM while the modules load: an exception raised inside a C extension's import (VTK,
    Slicer) can break it or crash the interpreter. Returns the previous handlers (None outside the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    _pendingSignals.clear()
    return {number: signal.signal(number, _deferSignal) for number in (signal.SIGINT, signal.SIGTERM)}


def _raiseSignals(previousHandlers):
    """From now on SIGINT raises KeyboardInterrupt and SIGTERM Terminated; one held meanwhile is raised now."""
    if previousHandlers is None:
        return
    for number in previousHandlers:
        signal.signal(number, _raiseForSignal)
    if _pendingSignals:
        _raiseForSignal(_pendingSignals[0])


def _restoreSignals(previousHandlers):
    for number, handler in (previousHandlers or {}).items():
        signal.signal(number, handler)


def _addVerbose(parser):
    parser.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                        help="log progress details, and the traceback of an error")


def buildParser():
    from .Batch import addBatchParser
    from .Classic import addClassicParsers
    from .InteractiveServer import addInteractiveServerParser
    from .Segment import addSegmentParser
    from .Train import addTrainParser
    from ..Classic.Threshold import Threshold

    parser = argparse.ArgumentParser(prog="aisegmentation", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details, and the traceback of "
                                                                     "an error")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="classic tools on TotalSegmentator's example CT (liver, bone)")
    demo.add_argument("--output", default="output/demo", help="folder for the outputs (default: output/demo)")

    web = commands.add_parser("web", add_help=False, help="the browser front end, in its own environment "
                              "(.venv-web): Scripts/aisegmentation web starts it; aisegmentation web --help")
    web.add_argument("arguments", nargs=argparse.REMAINDER)

    threshold = commands.add_parser("threshold", help="threshold a volume into a segment")
    _addInputs(threshold)
    threshold.add_argument("--range", nargs=2, type=float, metavar=("MIN", "MAX"), help="manual intensity range")
    threshold.add_argument("--auto-method", choices=list(Threshold.AUTO_THRESHOLD_METHODS),
                           help="automatic threshold method (instead of --range)")
    threshold.add_argument("--auto-mode", default="SET_LOWER_MAX", choices=Threshold.AUTO_THRESHOLD_MODES,
                           help="how the automatic threshold sets the range (default SET_LOWER_MAX)")

    trace = commands.add_parser("level-trace", help="level tracing from a seed on an edge")
    _addInputs(trace)
    trace.add_argument("--seed", nargs=3, type=float, required=True, metavar=("R", "A", "S"),
                       help="seed point in RAS millimetres, on the edge of the structure")
    trace.add_argument("--plane", default="IJ", choices=["IJ", "IK", "JK", "3D"],
                       help="2D plane through the seed, or 3D (default IJ)")

    grow = commands.add_parser("grow-from-seeds", help="grow two or more seed segments into the image")
    _addInputs(grow, segmentRequired=False)
    grow.add_argument("--seeds", action="append", default=[], metavar="NAME=MARKUPS",
                      help="segment NAME seeded from the points of a Slicer markups file (repeat, at least twice)")
    grow.add_argument("--seed-segments", nargs="+", default=[],
                      help="names of existing seed segments in --segmentation (instead of / beside --seeds)")
    grow.add_argument("--seed-radius", type=float, default=5.0, help="radius in mm painted around each seed point")
    grow.add_argument("--seed-locality", type=float, default=0.0, help="seed locality factor (0 = none)")
    grow.add_argument("--keep-largest-island", action="append", default=[], metavar="NAME",
                      help="after growing, keep only the largest island of this segment (repeatable)")

    islands = commands.add_parser("islands", help="clean up islands of a segment")
    _addInputs(islands)
    choice = islands.add_mutually_exclusive_group(required=True)
    choice.add_argument("--keep-largest", action="store_true", help="keep only the largest island")
    choice.add_argument("--remove-smaller-than", type=int, metavar="VOXELS", help="remove islands below this size")

    importer = commands.add_parser("import-labelmap", help="label-map image + name table -> .seg.nrrd")
    importer.add_argument("labelmap", help="label-map image (NIfTI, NRRD, MHA)")
    importer.add_argument("--labels", help="names: JSON file {\"1\": \"spleen\"} or \"1=spleen,2=liver\"")
    importer.add_argument("--output", required=True, help="output .seg.nrrd")
    addDicomOutputArguments(importer)

    exporter = commands.add_parser("export-labelmap", help=".seg.nrrd -> label-map image on a volume's grid")
    exporter.add_argument("segmentation", help="input .seg.nrrd")
    exporter.add_argument("volume", help="reference volume whose grid the label map uses")
    exporter.add_argument("--output", required=True, help="output label-map image (.nii.gz, .nrrd)")
    addVolumeOptions(exporter)
    addSegmentParser(commands)
    addClassicParsers(commands)
    addBatchParser(commands)
    addInteractiveServerParser(commands)
    addTrainParser(commands)

    compare = commands.add_parser("compare", help="Dice, Jaccard, volumes, Hausdorff, surface distances of segments")
    compare.add_argument("reference", help="reference segmentation: .seg.nrrd or a label-map image")
    compare.add_argument("compared", help="compared segmentation: .seg.nrrd or a label-map image")
    compare.add_argument("--reference-labels", help="label names of a reference label map (JSON file or 1=a,2=b)")
    compare.add_argument("--compared-labels", help="label names of a compared label map (JSON file or 1=a,2=b)")
    addSeriesArgument(compare)
    addMatchArguments(compare)
    compare.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="where to compute")
    compare.add_argument("--hd95-mode", default="max", choices=["max", "pooled", "slicerrt"],
                         help="HD95 convention: max of directed (MONAI), pooled (medpy), slicerrt")
    compare.add_argument("--asd-mode", default="pooled", choices=["pooled", "meanOfMeans"],
                         help="average surface distance: pooled distances, or mean of the two directed means")
    compare.add_argument("--tolerance", type=float, default=2.0, help="surface Dice tolerance in mm (default 2)")
    compare.add_argument("--hd-percentile", type=float, default=95.0,
                         help="percentile of the 'HD95' column, 0-100 (default 95)")
    compare.add_argument("--json", metavar="PATH", help="write the results as JSON ('-' for standard output)")
    compare.add_argument("--csv", metavar="PATH", help="write the results as CSV")
    compare.add_argument("--error-map", metavar="PATH.seg.nrrd",
                         help="write the true positive / false positive / false negative voxels of every structure "
                              "as a segmentation")
    compare.add_argument("--distance-map", metavar="PATH.vtk",
                         help="write the compared surfaces with their signed distance (mm) to the reference surface "
                              "per point (.vtk or .vtp polydata)")
    for subparser in list(commands.choices.values()) + list(_nestedSubparsers(commands)):
        _addVerbose(subparser)
    return parser


def _nestedSubparsers(commands):
    for subparser in commands.choices.values():
        for action in subparser._actions:
            if isinstance(action, argparse._SubParsersAction):
                yield from action.choices.values()


def runDemo(logic, args):
    from ..Demo.Demo import runDemo as demo

    result = demo(logic, args.output)
    print(f"Liver Dice against TotalSegmentator's liver: {result['liverDice']:.3f}")
    printComparisonTable([{"referenceSegment": "liver (TotalSegmentator)", "comparedSegment": "liver (demo)",
                           "result": result["liverComparison"]}])
    print(f"Grow from seeds: {result['growFromSeedsSeconds']:.2f} s")
    print(f"{'segment':<12}{'voxels':>10}{'volume mL':>12}")
    for row in result["table"]:
        print(f"{row['segment']:<12}{row['voxels']:>10}{row['volumeMl']:>12.2f}")
    for kind, path in result["outputs"].items():
        print(f"{kind:>13}: {os.path.abspath(path)}")


def runThreshold(logic, args):
    if (args.range is None) == (args.auto_method is None):
        raise ValueError("Give exactly one of --range MIN MAX or --auto-method METHOD")
    volume, segmentation = _prepare(logic, args)
    segmentId = logic.getOrAddSegment(segmentation, args.segment)
    if args.range:
        logic.threshold(volume, segmentation, segmentId, *args.range)
    else:
        low, high = logic.autoThreshold(volume, segmentation, segmentId, args.auto_method, args.auto_mode)
        print(f"Automatic threshold range: {low:g} .. {high:g}")
    _save(logic, args, volume, segmentation)


def runLevelTrace(logic, args):
    volume, segmentation = _prepare(logic, args)
    segmentId = logic.getOrAddSegment(segmentation, args.segment)
    logic.levelTrace(volume, segmentation, segmentId, args.seed, args.plane)
    _save(logic, args, volume, segmentation)


def runGrowFromSeeds(logic, args):
    volume, segmentation = _prepare(logic, args)
    from ..Segments import segmentIdByName

    session = logic.growFromSeeds(volume, segmentation, seedSegmentIds(logic, args, volume, segmentation),
                                  args.seed_locality)
    session.apply()
    print(f"Grow from seeds: {session.lastComputationSeconds:.2f} s")
    for name in args.keep_largest_island:
        logic.keepLargestIsland(volume, segmentation, segmentIdByName(segmentation, name))
    _save(logic, args, volume, segmentation)


def runIslands(logic, args):
    volume, segmentation = _prepare(logic, args)
    from ..Segments import segmentIdByName

    segmentId = segmentIdByName(segmentation, args.segment)
    if args.keep_largest:
        logic.keepLargestIsland(volume, segmentation, segmentId)
    else:
        logic.removeSmallIslands(volume, segmentation, segmentId, args.remove_smaller_than)
    _save(logic, args, volume, segmentation)


def runImportLabelmap(logic, args):
    segmentation = logic.importLabelmap(args.labelmap, args.labels)
    writeDicomOutputs(logic, args, segmentation)
    print(f"Segmentation: {logic.saveSegmentation(segmentation, args.output)}")
    for segmentId in segmentation.GetSegmentation().GetSegmentIDs():
        segment = segmentation.GetSegmentation().GetSegment(segmentId)
        print(f"  {segment.GetLabelValue():>4} {segment.GetName()}")


def runExportLabelmap(logic, args):
    segmentation = logic.loadSegmentation(args.segmentation)
    volume = loadVolume(logic, args, args.volume)
    path, names = logic.exportLabelmap(segmentation, volume, args.output)
    print(f"Label map: {path} ({len(names)} labels; names in {path}.labels.json)")


def _isSegmentationFile(path):
    from ..Dicom.DicomLogic import dicomSegmentationKind

    return str(path).lower().endswith(".seg.nrrd") or dicomSegmentationKind(path) is not None


def _loadSegmentationFile(logic, path, labels, series=None):
    if _isSegmentationFile(path):
        return logic.loadSegmentation(path, sourceSeries=series), True
    return logic.importLabelmap(path, labels), bool(labels)


def runCompare(logic, args):
    import json

    from ..Comparison import SegmentComparisonMRML
    from ..Comparison.LabelMatching import readLabelMapping
    from ..AtomicWrite import writeText

    options = dict(device=args.device, hausdorff95Mode=args.hd95_mode, averageSurfaceDistanceMode=args.asd_mode,
                   surfaceDiceTolerance=args.tolerance, hausdorffPercentile=args.hd_percentile)
    mapping = readLabelMapping(args.mapping)  # a bad mapping stops everything before any work
    _requireMapOutputs(args)
    if not _isSegmentationFile(args.reference) and not _isSegmentationFile(args.compared):
        # Two label maps: compared value by value, without segmentation nodes.
        rows = logic.compareLabelmapFiles(args.reference, args.compared, args.reference_labels, args.compared_labels,
                                          args.match, csvPath=args.csv, mapping=mapping, **options)
    else:
        reference, referenceNamed = _loadSegmentationFile(logic, args.reference, args.reference_labels, args.series)
        compared, comparedNamed = _loadSegmentationFile(logic, args.compared, args.compared_labels, args.series)
        pairs = SegmentComparisonMRML.matchSegments(reference, compared, args.match, mapping, referenceNamed,
                                                    comparedNamed)
        rows, _ = logic.compareSegmentations(reference, compared, pairs, csvPath=args.csv, **options)
    printComparisonTable(rows)
    if mapping:
        printStructureMapping(rows)
    if args.error_map or args.distance_map:
        writeComparisonMaps(logic, args, mapping)
    if args.json:
        records = [{"referenceSegment": r["referenceSegment"], "comparedSegment": r["comparedSegment"],
                    "structure": r.get("structure"),
                    **{k: _jsonValue(v) for k, v in r["result"].asDict().items()}} for r in rows]
        text = json.dumps(records, indent=1)
        if args.json == "-":
            print(text)
        else:
            writeText(args.json, text)


def printComparisonTable(rows):
    """The shown metrics (Comparison/Metrics.py) of each row, one line per structure, its note after them."""
    from ..Comparison.Metrics import shownMetrics

    columns = [(metric, max(9, len(metric.shortTitle()) + 1)) for metric in shownMetrics()]
    titles = "".join(f"{metric.shortTitle():>{width}}" for metric, width in columns)
    print(f"{'reference':<22}{'compared':<22}{titles}")
    for row in rows:
        result = row["result"]
        referenceName, comparedName = row["referenceSegment"] or "-", row["comparedSegment"] or "-"
        cells = "".join(f"{metric.format(getattr(result, metric.key)):>{width}}" for metric, width in columns)
        note = f"  ({result.note})" if result.note else ""
        print(f"{referenceName[:21]:<22}{comparedName[:21]:<22}{cells}{note}")


def _requireMapOutputs(args):
    from ..AtomicWrite import requireWritableOutput

    if args.error_map and not args.error_map.lower().endswith(".seg.nrrd"):
        raise ValueError(f"--error-map writes a segmentation: give a .seg.nrrd path, got '{args.error_map}'")
    if args.distance_map and args.distance_map.lower().rsplit(".", 1)[-1] not in ("vtk", "vtp"):
        raise ValueError(f"--distance-map writes polydata: give a .vtk or .vtp path, got '{args.distance_map}'")
    for path in (args.error_map, args.distance_map):
        if path:
            requireWritableOutput(path)


def writeComparisonMaps(logic, args, mapping):
    """The error map and / or the distance map of the compared pair (segmentation nodes: label maps imported)."""
    from ..Comparison import SegmentComparisonMRML

    reference, referenceNamed = _loadSegmentationFile(logic, args.reference, args.reference_labels)
    compared, comparedNamed = _loadSegmentationFile(logic, args.compared, args.compared_labels)
    pairs = SegmentComparisonMRML.matchSegments(reference, compared, args.match, mapping, referenceNamed,
                                                comparedNamed)
    if args.error_map:
        errorMap = logic.comparisonErrorMap(reference, compared, pairs)
        print(f"Error map: {logic.saveSegmentation(errorMap, args.error_map)}")
    if args.distance_map:
        models = logic.comparisonDistanceMap(reference, compared, pairs, path=args.distance_map)
        print(f"Distance map: {args.distance_map} ({len(models)} surfaces)")


def _jsonValue(value):
    """JSON has no infinity and no NaN: "inf" / "-inf" and null (an undefined ratio, e.g. sensitivity without a
    reference)."""
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return str(value)
    return None if isinstance(value, float) and value != value else value


def printStructureMapping(rows):
    """Which source segment became which structure, where the name changed (label homogenization)."""
    for row in rows:
        for side in ("reference", "compared"):
            name = row[f"{side}Segment"]
            if name is not None and row.get("structure") and name != row["structure"]:
                print(f"  {side} '{name}' -> structure '{row['structure']}'")


def runSegment(logic, args):
    from .Segment import runSegment as run

    run(logic, args)


def runBatch(logic, args):
    from .Batch import runBatch as run

    run(logic, args)


def runTrain(logic, args):
    from .Train import runTrain as run

    run(logic, args)


def runInteractiveServer(logic, args):
    from .InteractiveServer import runInteractiveServer as run

    run(logic, args)


def runWeb(logic, args):
    raise ValueError("the web front end runs in its own environment: start it with Scripts/aisegmentation web")


COMMANDS = {"demo": runDemo, "threshold": runThreshold, "level-trace": runLevelTrace,
            "grow-from-seeds": runGrowFromSeeds, "islands": runIslands, "import-labelmap": runImportLabelmap,
            "export-labelmap": runExportLabelmap, "compare": runCompare, "segment": runSegment,
            "batch": runBatch, "interactive-server": runInteractiveServer,
            "train": runTrain, "web": runWeb}


def requireWritableOutputs(args):
    """Check every output path before any work, so that an unwritable folder fails fast with a clear message."""
    from ..AtomicWrite import requireWritableOutput

    if args.command in ("demo", "batch"):  # an output folder
        requireWritableOutput(os.path.join(args.output, "demo.seg.nrrd" if args.command == "demo" else "cohort.csv"))
        return
    if getattr(args, "sequence", False):  # segment --sequence: an output folder (CommandLine/SegmentSequence.py)
        return
    for name in ("output", "labelmap_output", "json", "csv", "dicom_seg_output", "rtstruct_output"):
        path = getattr(args, name, None)
        if path and path != "-":
            requireWritableOutput(path)


def _error(args, text):
    print(f"aisegmentation{' ' + args.command if args.command else ''}: {text}", file=sys.stderr)


def _logTraceback(args):
    if getattr(args, "verbose", False):
        logging.error("Traceback of the error below:", exc_info=True)


def main(argv=None):
    """Run the command line; returns the exit code. No traceback reaches the user: with -v it goes to the log."""
    previousHandlers = _deferSignals()
    args = argparse.Namespace(command=None)
    try:
        from .Batch import withManifestPlaceholder

        args = buildParser().parse_args(withManifestPlaceholder(sys.argv[1:] if argv is None else argv))
        logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.WARNING,
                            format="%(levelname)s %(message)s")
        from ..Logic import AISegmentationLogic

        logic = AISegmentationLogic()
        _raiseSignals(previousHandlers)
        requireWritableOutputs(args)
        from .Classic import runClassicCommand

        COMMANDS.get(args.command, runClassicCommand)(logic, args)
    except KeyboardInterrupt:
        _logTraceback(args)
        _error(args, f"interrupted (Ctrl-C); {INTERRUPTED_NOTE}")
        return EXIT_SIGINT
    except Terminated:
        _logTraceback(args)
        _error(args, f"terminated (SIGTERM); {INTERRUPTED_NOTE}")
        return EXIT_SIGTERM
    except (ValueError, RuntimeError) as error:
        _logTraceback(args)
        _error(args, f"error: {error}")
        return EXIT_ERROR
    except Exception as error:  # noqa: BLE001 - a bug of ours still ends with one line, not a traceback
        _logTraceback(args)
        _error(args, f"unexpected error ({type(error).__name__}: {error}); run with -v for the traceback")
        return EXIT_INTERNAL_ERROR
    finally:
        _restoreSignals(previousHandlers)
    return 0

